"""Streaming change detectors for the monitoring loop.

Every detector follows one contract (:mod:`opsloop.detect.base`): ``update(x)`` for one item,
``update_many(xs)`` for an array (same signals, same state), ``to_state``/``from_state``.

>>> import numpy as np
>>> from opsloop.detect import ADWIN
>>> ADWIN().update_many(np.r_[np.zeros(500), np.ones(500)]).drift_indices.tolist()
[511]
"""

from opsloop.detect.adwin import ADWIN
from opsloop.detect.base import DetectionResult, Detector, WarningDetector, detector_from_state
from opsloop.detect.cusum import CUSUM
from opsloop.detect.ddm import DDM
from opsloop.detect.eddm import EDDM
from opsloop.detect.hdddm import HDDDM
from opsloop.detect.hddm_a import HDDM_A
from opsloop.detect.hddm_w import HDDM_W
from opsloop.detect.kswin import KSWIN
from opsloop.detect.lfr import LFR
from opsloop.detect.md3 import MD3
from opsloop.detect.page_hinkley import PageHinkley
from opsloop.detect.per_feature import PerFeatureMonitor, PerFeatureResult

__all__ = [
    "ADWIN",
    "CUSUM",
    "DDM",
    "EDDM",
    "HDDDM",
    "HDDM_A",
    "HDDM_W",
    "KSWIN",
    "LFR",
    "MD3",
    "DetectionResult",
    "Detector",
    "PageHinkley",
    "PerFeatureMonitor",
    "PerFeatureResult",
    "WarningDetector",
    "detector_from_state",
]
