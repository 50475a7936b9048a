"""The contract every streaming change detector follows, and the result of a batch of updates.

A detector reads one stream (an error stream, a feature's values, a model's margin) and says,
after each item, whether it signals a change (``drift_detected``) and, for the methods that have
one, whether it is in a warning zone (``warning_detected``).

* ``update(x)`` reads one item and returns ``drift_detected``.
* ``update_many(xs)`` reads a 1-D array and returns a :class:`DetectionResult` with the positions
  in ``xs`` where drift (and warning) was signalled: the same positions, and the same state
  afterwards, as feeding the items one by one. An empty array returns an empty result.
* After a detection the detector starts afresh on the next item (River's convention), so the
  flags stay readable until then.
* ``to_state()`` returns a JSON-safe dict and ``from_state(state)`` rebuilds a detector that
  continues exactly where the saved one stopped, in another window or another process.
* The whole input is checked before any state changes: a bad value raises ``ValueError`` naming
  the detector and the rule, and leaves the detector untouched.

Numbers in saved states are plain floats, except non-finite ones: ``nan`` is saved as ``None``
and infinities as the strings ``"inf"`` and ``"-inf"`` (JSON has no literal for them).

>>> result = DetectionResult("DDM", 0, 5, np.array([3]), np.array([1, 2]))
>>> result.to_dict()["drift_indices"]
[3]
>>> result.to_frame().signal.tolist()
['warning', 'warning', 'drift']
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from opsloop.detect.presets import preset_params
from opsloop.detect.validation import InputRule, check_value, check_values

#: Version of the layout written by ``to_state``; bumped when a detector's saved state changes.
STATE_FORMAT = 1

DRIFT_FLAG = 1
WARNING_FLAG = 2


def encode_float(value: float) -> float | str | None:
    """A float as JSON can hold it: ``nan`` -> ``None``, infinities -> ``"inf"``/``"-inf"``.

    >>> encode_float(0.5), encode_float(float("inf")), encode_float(float("nan"))
    (0.5, 'inf', None)
    """
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def decode_float(value: float | str | None) -> float:
    """The inverse of :func:`encode_float`.

    >>> decode_float("-inf"), decode_float(None), decode_float(2)
    (-inf, nan, 2.0)
    """
    if value is None:
        return math.nan
    if isinstance(value, str):
        if value not in ("inf", "-inf"):
            raise ValueError(f"saved state: {value!r} is not a number, 'inf', '-inf' or null")
        return math.inf if value == "inf" else -math.inf
    return float(value)


@dataclass(frozen=True, eq=False)
class DetectionResult:
    """What one ``update_many`` call signalled.

    ``drift_indices`` and ``warning_indices`` are positions in the batch (0-based, sorted);
    ``start`` is how many items the detector had read before the batch, so ``start + index``
    is the position in the whole stream. ``warning_indices`` is empty for methods without a
    warning zone.

    >>> r = DetectionResult("ADWIN", 100, 50, np.array([7]), np.array([], dtype=np.int64))
    >>> r.drift_detected, r.n_drifts, r.stream_positions().tolist()
    (True, 1, [107])
    """

    detector: str
    start: int
    n_items: int
    drift_indices: np.ndarray
    warning_indices: np.ndarray

    @classmethod
    def empty(cls, detector: str, start: int) -> DetectionResult:
        """The result of an empty batch.

        >>> DetectionResult.empty("DDM", 10).n_items
        0
        """
        none = np.array([], dtype=np.int64)
        return cls(detector, start, 0, none, none.copy())

    @classmethod
    def from_flags(cls, detector: str, start: int, flags: np.ndarray) -> DetectionResult:
        """Build a result from per-item flags (bit 1: drift, bit 2: warning).

        >>> DetectionResult.from_flags("DDM", 0, np.array([0, 2, 1], np.uint8)).drift_indices
        array([2])
        """
        return cls(
            detector,
            int(start),
            int(flags.size),
            np.flatnonzero(flags & DRIFT_FLAG),
            np.flatnonzero(flags & WARNING_FLAG),
        )

    @property
    def drift_detected(self) -> bool:
        """Whether drift was signalled anywhere in the batch."""
        return bool(self.drift_indices.size)

    @property
    def n_drifts(self) -> int:
        """Number of items at which drift was signalled."""
        return int(self.drift_indices.size)

    @property
    def n_warnings(self) -> int:
        """Number of items at which the detector was in its warning zone."""
        return int(self.warning_indices.size)

    def stream_positions(self) -> np.ndarray:
        """Drift positions counted from the detector's first item (``start + drift_indices``)."""
        return self.start + self.drift_indices

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary."""
        return {
            "detector": self.detector,
            "start": int(self.start),
            "n_items": int(self.n_items),
            "drift_indices": [int(i) for i in self.drift_indices],
            "warning_indices": [int(i) for i in self.warning_indices],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per signal: ``index`` in the batch, stream ``position``, ``signal`` kind."""
        index = np.concatenate([self.warning_indices, self.drift_indices]).astype(np.int64)
        signal = np.array(["warning"] * self.n_warnings + ["drift"] * self.n_drifts, dtype=object)
        order = np.argsort(index, kind="stable")
        return pd.DataFrame(
            {
                "index": index[order],
                "position": index[order] + self.start,
                "signal": signal[order],
            }
        )


class Detector(ABC):
    """Base class of the streaming change detectors (see the module docstring for the contract).

    A subclass stores its parameters in ``__init__`` (then calls ``_init_stream``) and
    implements the hooks below; counting, saving and restoring live here. Detectors that
    read one number per item derive from :class:`ScalarDetector`, which also implements
    ``update`` and ``update_many``.

    >>> from opsloop.detect import DDM
    >>> detector = DDM()
    >>> detector.update_many(np.zeros(100)).n_drifts, detector.n_seen
    (0, 100)
    """

    #: Every detector class, by class name, for :func:`detector_from_state`. The abstract
    #: bases are here too (whether a class is abstract is known only after
    #: ``__init_subclass__`` runs), so :func:`detector_from_state` refuses those.
    registry: ClassVar[dict[str, type[Detector]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Detector.registry[cls.__name__] = cls

    @property
    def name(self) -> str:
        """The detector's class name, used in messages and saved states."""
        return type(self).__name__

    @classmethod
    def preset(cls, name: str) -> Detector:
        """A detector with the parameters of a named preset (see :mod:`opsloop.detect.presets`);
        a clear error names the presets that exist when ``name`` is not one of them.

        >>> from opsloop.detect import ADWIN, CUSUM, PageHinkley
        >>> PageHinkley.preset("monitoring").threshold, CUSUM.preset("monitoring").k
        (26.0, 0.25)
        >>> ADWIN.preset("monitoring").delta < ADWIN().delta
        True
        """
        return cls(**preset_params(cls.__name__, name))

    # -- hooks ---------------------------------------------------------------------------------

    @abstractmethod
    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters (JSON-safe), so ``type(d)(**d.get_params())`` is a twin."""

    @abstractmethod
    def _start_afresh(self) -> None:
        """Set the state to the one before any item."""

    @abstractmethod
    def _export_state(self) -> dict[str, Any]:
        """The state as a JSON-safe dict."""

    @abstractmethod
    def _import_state(self, state: dict[str, Any]) -> None:
        """Load a state written by ``_export_state``."""

    @property
    @abstractmethod
    def drift_detected(self) -> bool:
        """Whether the last item read made the detector signal a change."""

    @abstractmethod
    def update(self, x) -> bool:
        """Read one item; return whether drift is signalled at it."""

    @abstractmethod
    def update_many(self, xs) -> DetectionResult:
        """Read a batch of items, exactly as if each was given to :meth:`update` in turn."""

    # -- the contract --------------------------------------------------------------------------

    def _init_stream(self) -> None:
        self._n_seen = 0
        self._start_afresh()

    @property
    def n_seen(self) -> int:
        """Items read since construction or the last :meth:`reset` (detections do not reset it)."""
        return self._n_seen

    def reset(self) -> None:
        """Forget everything read so far; parameters are kept."""
        self._init_stream()

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue this stream elsewhere, as a JSON-safe dict."""
        return {
            "detector": self.name,
            "format": STATE_FORMAT,
            "params": self.get_params(),
            "n_seen": int(self.n_seen),
            "state": self._export_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Detector:
        """Rebuild a detector saved by :meth:`to_state`."""
        for key in ("detector", "format", "params", "n_seen", "state"):
            if key not in state:
                raise ValueError(f"{cls.__name__}.from_state: the saved state has no {key!r} key")
        if inspect.isabstract(cls):
            raise ValueError(
                f"{cls.__name__}.from_state: {cls.__name__} is an abstract base class; "
                "call from_state on a concrete detector or use detector_from_state"
            )
        if state["detector"] != cls.__name__:
            raise ValueError(
                f"{cls.__name__}.from_state: the saved state is for {state['detector']!r}"
            )
        if state["format"] != STATE_FORMAT:
            raise ValueError(
                f"{cls.__name__}.from_state: state format {state['format']!r} is not supported "
                f"(expected {STATE_FORMAT})"
            )
        detector = cls(**state["params"])
        detector._import_state(state["state"])
        detector._n_seen = int(state["n_seen"])
        return detector

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{self.name}({params})"


class ScalarDetector(Detector):
    """A detector that reads one number per item, checked against ``input_rule``.

    ``input_rule`` is ``"binary"`` (0 or 1), ``"unit"`` (in [0, 1]) or ``"real"`` (finite).
    Subclasses implement ``_step`` (one checked item) and ``_run`` (a checked, non-empty
    float64 array, returning per-item flags: bit 1 drift, bit 2 warning).
    """

    input_rule: ClassVar[InputRule] = "real"

    @abstractmethod
    def _step(self, x: float) -> None:
        """Read one checked item."""

    @abstractmethod
    def _run(self, xs: np.ndarray) -> np.ndarray:
        """Read a checked, non-empty float64 array; return per-item flags (uint8)."""

    def update(self, x: float) -> bool:
        """Read one item; return whether drift is signalled at it."""
        value = check_value(self.name, x, self.input_rule)
        self._step(value)
        self._n_seen += 1
        return self.drift_detected

    def update_many(self, xs: np.ndarray) -> DetectionResult:
        """Read a 1-D array of items, exactly as if each was given to :meth:`update` in turn."""
        array = check_values(self.name, xs, self.input_rule)
        start = self.n_seen
        if array.size == 0:
            return DetectionResult.empty(self.name, start)
        flags = self._run(array)
        self._n_seen += int(array.size)
        return DetectionResult.from_flags(self.name, start, flags)


class WarningDetector(Detector):
    """A detector with a warning zone before drift (DDM, EDDM, HDDM_A, HDDM_W, LFR)."""

    @property
    @abstractmethod
    def warning_detected(self) -> bool:
        """Whether the last item read left the detector in its warning zone."""


class SlotState(ABC):
    """State kept as a short float64 vector of named slots (a mixin for :class:`Detector`).

    Slot 0 holds the drift flag (and slot 1 the warning flag where there is one); the numba
    kernels of the subclass read and write the vector in place, so ``update`` and
    ``update_many`` share one implementation of the update rule.
    """

    _slots: ClassVar[tuple[str, ...]]
    _s: np.ndarray

    @abstractmethod
    def _initial_slots(self) -> np.ndarray:
        """The slot vector before any item."""

    def _start_afresh(self) -> None:
        self._s = self._initial_slots()

    @property
    def drift_detected(self) -> bool:
        """Whether the last item read made the detector signal a change."""
        return bool(self._s[0])

    def _export_state(self) -> dict[str, Any]:
        return {name: encode_float(v) for name, v in zip(self._slots, self._s, strict=True)}

    def _import_state(self, state: dict[str, Any]) -> None:
        missing = [name for name in self._slots if name not in state]
        if missing:
            raise ValueError(f"{type(self).__name__}.from_state: the saved state lacks {missing}")
        self._s = np.array([decode_float(state[name]) for name in self._slots], dtype=np.float64)


class SlotDetector(SlotState, ScalarDetector):
    """A :class:`ScalarDetector` whose state is a :class:`SlotState` vector.

    Subclasses whose update rule is a pair of compiled kernels set ``_step_kernel(state, x,
    *args)`` and ``_run_kernel(state, xs, *args, flags)`` (numba functions, as
    ``staticmethod``) and keep their fixed arguments in ``self._args``: one kernel reads an
    item, the other a whole array with the same arithmetic, which is what keeps ``update`` and
    ``update_many`` identical.
    """

    _step_kernel: ClassVar[Any]
    _run_kernel: ClassVar[Any]

    def _step(self, x: float) -> None:
        self._step_kernel(self._s, x, *self._args)

    def _run(self, xs: np.ndarray) -> np.ndarray:
        flags = np.empty(xs.size, dtype=np.uint8)
        self._run_kernel(self._s, xs, *self._args, flags)
        return flags


class PythonStepDetector(SlotDetector):
    """A :class:`SlotDetector` whose ``update`` is plain Python over a list of floats.

    For a rule of a dozen float operations (DDM, EDDM, PageHinkley), calling a compiled kernel
    for one item costs several times the arithmetic: numba's dispatcher types every argument
    on every call, and reading the result back from a numpy array makes numpy scalars. So the
    state is a Python list, ``update`` (written by the subclass) reads and writes it directly,
    and ``update_many`` copies it into an array for the kernel and back. The subclass's
    ``update`` repeats the kernel's operations in the same order, so both paths give the same
    floats; the tests compare both with River item by item.
    """

    _s: list[float]  # type: ignore[assignment]

    def _start_afresh(self) -> None:
        super()._start_afresh()
        self._s = self._initial_slots().tolist()

    def _import_state(self, state: dict[str, Any]) -> None:
        super()._import_state(state)
        self._s = np.asarray(self._s).tolist()

    def _step(self, x: float) -> None:
        self._run(np.array([x]))

    def _run(self, xs: np.ndarray) -> np.ndarray:
        slots = np.array(self._s, dtype=np.float64)
        flags = np.empty(xs.size, dtype=np.uint8)
        self._run_kernel(slots, xs, *self._args, flags)
        self._s = slots.tolist()
        return flags


def detector_from_state(state: dict[str, Any]) -> Detector:
    """Rebuild any detector from its saved state, whatever its class.

    A detector saved mid-stream goes on where it stopped: it flags the shift at position 310,
    as one that saw the whole stream does.

    >>> import numpy as np
    >>> from opsloop.detect import PageHinkley
    >>> stream = np.r_[np.zeros(300), np.full(300, 5.0)]
    >>> PageHinkley().update_many(stream).stream_positions().tolist()
    [310]
    >>> detector = PageHinkley()
    >>> _ = detector.update_many(stream[:301])
    >>> saved = detector.to_state()
    >>> restored = detector_from_state(saved)
    >>> isinstance(restored, PageHinkley), restored.n_seen
    (True, 301)
    >>> restored.update_many(stream[301:]).stream_positions().tolist()
    [310]
    >>> detector_from_state({**saved, "detector": "ScalarDetector"})
    Traceback (most recent call last):
    ...
    ValueError: detector_from_state: 'ScalarDetector' is an abstract base class, not a detector
    """
    name = state.get("detector") if isinstance(state, dict) else None
    cls = Detector.registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"detector_from_state: unknown detector {name!r}")
    if inspect.isabstract(cls):
        raise ValueError(f"detector_from_state: {name!r} is an abstract base class, not a detector")
    return cls.from_state(state)
