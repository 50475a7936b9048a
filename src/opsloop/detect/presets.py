"""Named parameter sets that can be left on in monitoring.

The detector classes keep River's defaults so that they give River's detections, but those
defaults are tuned for experiments, not for a production monitor that runs for months: with
them PageHinkley raises a false alarm every few thousand items of Gaussian noise and KSWIN
every few hundred. A ``"monitoring"`` preset trades a little delay for rare false alarms.

Each preset was chosen, and is re-measured, by ``benchmarks/detectors.py`` on two scenarios:

* **mean shift**: Gaussian noise with unit variance (the detector sees standardised values),
  and a shift of the mean by 0.5 standard deviation;
* **error rate**: a 0/1 error stream whose error rate goes from 10% to 30% (and, to check
  that a change soon after the start is found, from 10% to 35% after only 2,000 items).

The targets, for each scenario a preset is meant for:

* **false alarms**: at most 0.1 per 100,000 unchanged items (one per million), counted on
  20,000,000 items. Every alarm costs a person's look; at a million items between false
  alarms, a monitor reading 10,000 items a day raises one every few months;
* **delay**: a change made after 10,000 unchanged items found on average within 200 items
  (over 200 trials; a change missed for 1,000 items counts as 1,001): a few hundred items
  is the size of the batch a person would inspect when an alarm comes;
* **warm-up**: no longer than 1,000 items, so that a monitor started on a fresh model finds
  a change in its first few thousand items.

Measured (``tests/detect/test_presets.py`` pins the same measurement on a fixed seed and
smaller streams):

===========  ==========  ==========  =================  ===========  ============  =============
detector     preset      scenario    false alarms per   same, fresh  mean delay    10%→35% after
                                     100,000 (in 20 M)  detectors    (within 200)  2,000: delay
===========  ==========  ==========  =================  ===========  ============  =============
PageHinkley  monitoring  mean shift  0.035 (7)          0            98 (98%)
PageHinkley  error_rate  error rate  0.015 (3)          0            81 (100%)     64
CUSUM        monitoring  mean shift  0.005 (1)          0            137 (89%)
CUSUM        monitoring  error rate  0.005 (1)          0            79 (100%)     60
ADWIN        monitoring  mean shift  0.010 (2)          0            120 (96%)
ADWIN        monitoring  error rate  0 (0)              0            118 (98%)     96
===========  ==========  ==========  =================  ===========  ============  =============

"Fresh detectors" counts the alarms of 200 new detectors in the 10,000 unchanged items each
reads before its change: a detector's first items, where its estimates are roughest, are
where false alarms gather (see EDDM below), and a long stream read by one detector would
hide them.

CUSUM's ``monitoring`` preset was recalibrated: its warm-up was 5,000 items, so a stream whose
error rate went from 10% to 35% at item 2,000 of 4,000 gave no alarm at all (the chart had not
started). A 1,000-item warm-up estimates a 10% error rate within about 1 point (one standard
error), and the estimate's error is what makes fresh detectors raise more false alarms than a
long-running one: with the old ``h=32``, 0.12 per 100,000 items in the first 10,000 items of
1,000 fresh detectors, over the target; ``h=36`` brings that to 0.03 for 12% more delay
(0.055 over 4,000 fresh detectors, 40,000,000 items; a sample of 2,000,000 items, as in the
table, sees between 0 and 5 such alarms).

CUSUM's ``"normal_scores"`` preset is for a stream whose in-control distribution is known
to be standard normal: the normal scores of a feature against its reference
(:mod:`opsloop.monitoring.feature_stream`). Its target and standard deviation are fixed
(0 and 1), so it has no warm-up and nothing estimated, and its threshold is not tuned by
trial but derived: ``h = 28.3`` is where Siegmund's approximation of the average run length
of a chart with ``k = 0.25`` on N(0, 1) values, ``(exp(2kb) - 2kb - 1) / (2k²)`` with
``b = h + 1.166``, is 20,000,000 on each side, 0.01 false alarms per 100,000 values in all,
ADWIN's measured rate. ``benchmarks/normal_score_cusum.py`` checks it by simulation:
1,000,000,000 values, 116 alarms where it predicts 99.9 (the 99% Poisson range is 75 to
127), and a mean delay of 110.7 for a half standard deviation from a chart at zero, where
it predicts 109.9. Scores against a reference *sample* need a higher threshold, which
:func:`opsloop.monitoring.score_cusum.cusum_threshold` gives.

The classes' own defaults stay River's (CUSUM's are the textbook ``k=0.5, h=5``), so that
``DDM()`` is River's ``DDM()``; they are not meant to be left on. On the same error stream
they give, per 100,000 unchanged items: CUSUM 133 false alarms (6.0 on average in a fresh
detector's first 2,000 items, over 200 seeds), DDM 0.005 but a mean delay of 556. EDDM gives
102 false alarms in 20,000,000 items, all in the first 36,000 (4.5 on average in a fresh
detector's first 2,000 items): a long gap between two errors early on sets a maximum of
``p' + 2s'`` that the converged statistics never fall below again, so after that it signals
nothing at all on that stream.

PageHinkley's threshold is in the stream's units, so its ``"monitoring"`` preset is for
standardised values and ``"error_rate"`` for error rates near 10% (standard deviation about
0.3); CUSUM standardises by itself and ADWIN's bound scales with the window's variance, so
their one preset serves both scenarios. For contrast, River's defaults on the same streams:
PageHinkley 12,600 false alarms; KSWIN 2,575 in 2,000,000 items; ADWIN 12 (and a mean delay
of 117, so its defaults already meet the goal; the preset has a sixth of the false alarms).

For the other detectors no parameters meet both goals, for reasons of the methods themselves:

* DDM and EDDM compare the error statistics of *everything* since the last detection, so
  their delay grows with the quiet period before a change (DDM's defaults: mean delay 556;
  EDDM's: 102 false alarms and a mean delay of 284).
* HDDM_A and HDDM_W at their defaults are at the edge: 0 and 2 false alarms, a mean delay of
  176, but a third of the changes take more than 200 items. A stricter confidence delays
  them further; a looser one (0.01) brings 61 and 291 false alarms.
* KSWIN tests 30 items against 30 after every item; at a significance strict enough for
  rare false alarms a 0.5σ shift moves the KS statistic too little at those sample sizes
  (``alpha=1e-6``: one false alarm in 2,000,000 items, but a mean delay of 996, a miss within
  1,000 items counting as 1,001; with ``window_size=300, stat_size=100`` as well: 818).

>>> preset_params("CUSUM", "monitoring")["h"]
36.0
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "PageHinkley": {
        "monitoring": {"min_instances": 30, "delta": 0.25, "threshold": 26.0, "alpha": 1.0},
        "error_rate": {"min_instances": 30, "delta": 0.075, "threshold": 11.0, "alpha": 1.0},
    },
    "CUSUM": {
        "monitoring": {"k": 0.25, "h": 36.0, "warm_start": 1000},
        "normal_scores": {"k": 0.25, "h": 28.3, "warm_start": 0, "target": 0.0, "sigma": 1.0},
    },
    "ADWIN": {
        "monitoring": {"delta": 0.0003, "clock": 4},
    },
}


def preset_params(detector: str, name: str) -> dict[str, Any]:
    """The constructor parameters of ``detector``'s preset ``name``.

    >>> preset_params("ADWIN", "monitoring")
    {'delta': 0.0003, 'clock': 4}
    >>> preset_params("DDM", "monitoring")
    Traceback (most recent call last):
    ...
    ValueError: no preset 'monitoring' for DDM; presets exist for ADWIN, CUSUM, PageHinkley
    """
    names = PRESETS.get(detector, {})
    if name not in names:
        if names:
            known = ", ".join(sorted(names))
            raise ValueError(f"no preset {name!r} for {detector}; its presets are {known}")
        known = ", ".join(sorted(PRESETS))
        raise ValueError(f"no preset {name!r} for {detector}; presets exist for {known}")
    return dict(names[name])
