"""Streaming change detectors for the monitoring loop.

Every detector follows one contract (:mod:`opsloop.detect.base`): ``update(x)`` for one item,
``update_many(xs)`` for an array (same signals, same state), ``to_state``/``from_state`` to
continue a stream in another window or process.

=====================================  ==============================================
family                                 detectors
=====================================  ==============================================
error rate, process control            :class:`DDM`, :class:`EDDM`
sequential analysis                    :class:`PageHinkley`, :class:`CUSUM`, :class:`LFR`
error distribution, adaptive windows   :class:`ADWIN`, :class:`HDDM_A`, :class:`HDDM_W`,
                                       :class:`KSWIN`
feature distribution (no labels)       :class:`HDDDM`, :class:`PerFeatureMonitor`
model-dependent (no labels)            :class:`MD3`
novelty (no labels)                    :class:`NoveltyDetector`
=====================================  ==============================================

ADWIN, DDM, EDDM, HDDM_A, HDDM_W, KSWIN and PageHinkley take River's parameters and defaults
and signal at the same items as River; :mod:`opsloop.detect.presets` has parameter sets for
monitoring with rare false alarms.

>>> import numpy as np
>>> from opsloop.detect import ADWIN
>>> ADWIN().update_many(np.r_[np.zeros(500), np.ones(500)]).drift_indices.tolist()
[511]
"""

from opsloop.detect.adwin import ADWIN
from opsloop.detect.base import (
    DetectionResult,
    Detector,
    ScalarDetector,
    WarningDetector,
    detector_from_state,
)
from opsloop.detect.cusum import CUSUM
from opsloop.detect.ddm import DDM
from opsloop.detect.eddm import EDDM
from opsloop.detect.hdddm import HDDDM
from opsloop.detect.hddm_a import HDDM_A
from opsloop.detect.hddm_w import HDDM_W
from opsloop.detect.kswin import KSWIN
from opsloop.detect.lfr import LFR
from opsloop.detect.md3 import MD3
from opsloop.detect.novelty import NoveltyCluster, NoveltyDetector, NoveltyResult
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
    "NoveltyCluster",
    "NoveltyDetector",
    "NoveltyResult",
    "PageHinkley",
    "PerFeatureMonitor",
    "PerFeatureResult",
    "ScalarDetector",
    "WarningDetector",
    "detector_from_state",
]
