"""Named parameter sets."""

from __future__ import annotations

PRESETS = {
    "PageHinkley": {
        "monitoring": {"min_instances": 30, "delta": 0.25, "threshold": 25.0, "alpha": 1.0}
    },
    "HDDM_A": {"monitoring": {"drift_confidence": 1e-7}},
    "HDDM_W": {"monitoring": {"drift_confidence": 1e-7}},
    "ADWIN": {"monitoring": {"delta": 1e-5}},
}


def preset_params(detector: str, name: str) -> dict:
    return dict(PRESETS[detector][name])


PRESETS["CUSUM"] = {"monitoring": {"k": 0.25, "h": 24.0, "warm_start": 5000}}
