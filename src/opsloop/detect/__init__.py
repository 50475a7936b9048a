from opsloop.detect.base import DetectionResult, Detector, detector_from_state
from opsloop.detect.ddm import DDM
from opsloop.detect.eddm import EDDM
from opsloop.detect.page_hinkley import PageHinkley
