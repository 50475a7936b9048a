from opsloop.detect.adwin import ADWIN
from opsloop.detect.base import DetectionResult, Detector, detector_from_state
from opsloop.detect.ddm import DDM
from opsloop.detect.eddm import EDDM
from opsloop.detect.hddm_a import HDDM_A
from opsloop.detect.hddm_w import HDDM_W
from opsloop.detect.kswin import KSWIN
from opsloop.detect.page_hinkley import PageHinkley
