"""Named parameter sets."""

from __future__ import annotations

PRESETS = {"PageHinkley": {"monitoring": {"min_instances": 30, "delta": 0.25, "threshold": 25.0, "alpha": 1.0}}}


def preset_params(detector: str, name: str) -> dict:
    return dict(PRESETS[detector][name])
