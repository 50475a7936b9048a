"""Novelty detection with micro-clusters, in the spirit of OLINDDA and MINAS.

The known concepts are summarised by micro-clusters: k-means on each class of the training
data, each cluster a centre and a radius (the distance of its farthest member). A new point
inside some cluster is explained; a point outside all of them goes to a buffer of unknowns.
Every ``check_every`` unknowns (once the buffer holds ``min_buffer``), the buffer is
clustered with k-means and each group of at least ``min_cluster_size`` points is judged:

* *cohesive and separated* when its members' mean distance to its centre (cohesion) is less
  than the distance from its centre to the nearest known centre (separation), the
  silhouette-style criterion of MINAS; other groups stay in the buffer;
* an *extension* of a known concept when its centre lies within ``extension_factor`` radii
  of the nearest known cluster: it becomes a new micro-cluster of that concept, silently;
* a *novelty* otherwise: it becomes a new micro-cluster labelled ``"novelty-<n>"``, reported
  with its size, centre, radius and distance to the known concepts, and drift is signalled
  at the point that completed it.

Unknowns older than ``buffer_window`` items are forgotten. Distances are Euclidean, so scale
the features first. This is our own composition of those two methods' published ideas (no
library implements them for numpy data); k-means is scikit-learn's with a fixed seed, so the
same stream gives the same novelties whether fed point by point or in batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.cluster import KMeans

from opsloop.detect.base import DetectionResult, Detector
from opsloop.detect.validation import positive_int, real_in


@dataclass(frozen=True)
class NoveltyCluster:
    """A cohesive group of unexplained points, declared a novel concept.

    ``position`` is the stream position of the point that completed it; ``distance_to_known``
    is the distance from its centre to the edge of the nearest known micro-cluster, whose
    class is ``nearest_concept``.

    >>> NoveltyCluster("novelty-1", 10, 25, (0.0, 1.0), 0.5, 2.0, "a").to_dict()["size"]
    25
    """

    label: str
    position: int
    size: int
    center: tuple[float, ...]
    radius: float
    distance_to_known: float
    nearest_concept: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary."""
        return {
            "label": self.label,
            "position": int(self.position),
            "size": int(self.size),
            "center": [float(v) for v in self.center],
            "radius": float(self.radius),
            "distance_to_known": float(self.distance_to_known),
            "nearest_concept": self.nearest_concept,
        }


@dataclass(frozen=True, eq=False)
class NoveltyResult(DetectionResult):
    """A :class:`DetectionResult` whose drift positions are declared novelties.

    ``warning_indices`` are the points that no micro-cluster explained (sent to the buffer)
    and ``novelties`` the clusters declared in this batch.
    """

    novelties: tuple[NoveltyCluster, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary."""
        return {**super().to_dict(), "novelties": [n.to_dict() for n in self.novelties]}


class NoveltyDetector(Detector):
    """Finds new concepts as cohesive groups of points that no known micro-cluster explains.

    Call :meth:`fit` on labelled training data first, then feed points (rows of features)
    with ``update`` or ``update_many``.

    Parameters
    ----------
    n_clusters
        Micro-clusters per class in :meth:`fit`, and the most groups the buffer is split into.
    min_cluster_size
        Points a buffer group needs to be judged.
    min_buffer
        Unknowns needed before the buffer is clustered at all.
    check_every
        Unknowns added between two clusterings of the buffer.
    buffer_window
        Unknowns older than this many items are forgotten.
    extension_factor
        A group whose centre is within this many radii of a known cluster extends it.
    seed
        Seed of k-means.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (300, 2)), rng.normal(6, 1, (300, 2))])
    >>> y = np.repeat(["a", "b"], 300)
    >>> detector = NoveltyDetector(seed=0).fit(X, y)
    >>> stream = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal([0, 12], 0.5, (100, 2))])
    >>> result = detector.update_many(stream)
    >>> [(n.label, n.nearest_concept) for n in result.novelties]
    [('novelty-1', 'b')]
    """

    def __init__(
        self,
        n_clusters: int = 10,
        min_cluster_size: int = 20,
        min_buffer: int = 50,
        check_every: int = 10,
        buffer_window: int = 5000,
        extension_factor: float = 1.5,
        seed: int = 0,
    ) -> None:
        self.n_clusters = positive_int("NoveltyDetector", "n_clusters", n_clusters)
        self.min_cluster_size = positive_int(
            "NoveltyDetector", "min_cluster_size", min_cluster_size, minimum=2
        )
        self.min_buffer = positive_int(
            "NoveltyDetector", "min_buffer", min_buffer, minimum=self.min_cluster_size
        )
        self.check_every = positive_int("NoveltyDetector", "check_every", check_every)
        self.buffer_window = positive_int("NoveltyDetector", "buffer_window", buffer_window)
        self.extension_factor = real_in(
            "NoveltyDetector", "extension_factor", extension_factor, low=0.0
        )
        self.seed = positive_int("NoveltyDetector", "seed", seed, minimum=0)
        self._centers = np.empty((0, 0))
        self._radii = np.empty(0)
        self._labels: list[str] = []
        self._init_stream()

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters.

        >>> NoveltyDetector().get_params()["min_cluster_size"]
        20
        """
        return {
            "n_clusters": self.n_clusters,
            "min_cluster_size": self.min_cluster_size,
            "min_buffer": self.min_buffer,
            "check_every": self.check_every,
            "buffer_window": self.buffer_window,
            "extension_factor": self.extension_factor,
            "seed": self.seed,
        }

    # -- the known concepts --------------------------------------------------------------------

    def _kmeans(self, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        model = KMeans(n_clusters=k, n_init=1, random_state=self.seed).fit(points)
        return model.cluster_centers_, model.labels_

    def fit(self, X, y) -> NoveltyDetector:
        """Summarise each class of ``(X, y)`` by up to ``n_clusters`` micro-clusters."""
        points = self._points(X, "X")
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.size != points.shape[0]:
            raise ValueError(
                f"NoveltyDetector.fit: y must be 1-D with one label per row of X "
                f"({points.shape[0]}), got shape {labels.shape}"
            )
        if points.shape[0] == 0:
            raise ValueError("NoveltyDetector.fit: X has no rows")
        centers, radii, names = [], [], []
        for concept in np.unique(labels):
            members = points[labels == concept]
            k = min(self.n_clusters, members.shape[0])
            c, assigned = self._kmeans(members, k)
            for j in range(k):
                own = members[assigned == j]
                if own.shape[0] == 0:
                    continue
                centers.append(c[j])
                radii.append(float(np.sqrt(((own - c[j]) ** 2).sum(axis=1)).max()))
                names.append(str(concept))
        self._centers = np.asarray(centers)
        self._radii = np.asarray(radii)
        self._labels = names
        self._init_stream()
        return self

    @property
    def concepts(self) -> list[str]:
        """Labels of the micro-clusters, known classes and novelties, in creation order."""
        return list(self._labels)

    # -- state ---------------------------------------------------------------------------------

    def _start_afresh(self) -> None:
        n_features = self._centers.shape[1] if self._centers.size else 0
        self._buffer = np.empty((0, n_features))
        self._buffer_at = np.empty(0, dtype=np.int64)
        self._since_check = 0
        self._n_novelties = sum(label.startswith("novelty-") for label in self._labels)
        self._drift = False

    @property
    def drift_detected(self) -> bool:
        """Whether the last point completed a novelty."""
        return self._drift

    def _export_state(self) -> dict[str, Any]:
        return {
            "centers": self._centers.tolist(),
            "radii": self._radii.tolist(),
            "labels": list(self._labels),
            "buffer": self._buffer.tolist(),
            "buffer_positions": self._buffer_at.tolist(),
            "since_check": self._since_check,
            "n_novelties": self._n_novelties,
            "drift": self._drift,
        }

    def _import_state(self, state: dict[str, Any]) -> None:
        keys = ("centers", "radii", "labels", "buffer", "buffer_positions", "since_check")
        missing = [key for key in (*keys, "n_novelties", "drift") if key not in state]
        if missing:
            raise ValueError(f"NoveltyDetector.from_state: the saved state lacks {missing}")
        self._centers = np.asarray(state["centers"], dtype=np.float64)
        self._radii = np.asarray(state["radii"], dtype=np.float64)
        self._labels = [str(v) for v in state["labels"]]
        n_features = self._centers.shape[1] if self._centers.size else 0
        self._buffer = np.asarray(state["buffer"], dtype=np.float64).reshape(-1, n_features)
        self._buffer_at = np.asarray(state["buffer_positions"], dtype=np.int64)
        self._since_check = int(state["since_check"])
        self._n_novelties = int(state["n_novelties"])
        self._drift = bool(state["drift"])

    def reset(self) -> None:
        """Forget the stream (buffer, counters); the micro-clusters, novelties included, stay."""
        self._init_stream()

    # -- input ---------------------------------------------------------------------------------

    def _points(self, X, name: str) -> np.ndarray:
        array = np.asarray(X)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"NoveltyDetector: {name} must hold numbers, got dtype {array.dtype}")
        if array.ndim != 2:
            raise ValueError(
                f"NoveltyDetector: {name} must be a 2-D (points, features) array, "
                f"got {array.ndim} dimensions"
            )
        array = np.asarray(array, dtype=np.float64)
        if self._centers.size and array.shape[1] != self._centers.shape[1]:
            raise ValueError(
                f"NoveltyDetector: {name} has {array.shape[1]} features, the model has "
                f"{self._centers.shape[1]}"
            )
        finite = np.isfinite(array)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise ValueError(
                f"NoveltyDetector: {name} point {row}, feature {col} is not a finite number"
            )
        return array

    # -- the method ----------------------------------------------------------------------------

    def _explained(self, points: np.ndarray) -> np.ndarray:
        distance = np.sqrt(((points[:, None, :] - self._centers[None]) ** 2).sum(axis=2))
        return (distance <= self._radii).any(axis=1)

    def _judge_buffer(self, position: int) -> list[NoveltyCluster]:
        k = min(self.n_clusters, self._buffer.shape[0] // self.min_cluster_size)
        if k < 1:
            return []
        centers, assigned = self._kmeans(self._buffer, k)
        known = np.array([not label.startswith("novelty-") for label in self._labels])
        keep = np.ones(self._buffer.shape[0], dtype=bool)
        declared = []
        for j in range(k):
            members = self._buffer[assigned == j]
            if members.shape[0] < self.min_cluster_size:
                continue
            spread = np.sqrt(((members - centers[j]) ** 2).sum(axis=1))
            to_all = np.sqrt(((self._centers - centers[j]) ** 2).sum(axis=1))
            nearest = int(np.argmin(to_all))
            if not spread.mean() < to_all[nearest]:
                continue
            keep[assigned == j] = False
            radius = float(spread.max())
            if to_all[nearest] <= self.extension_factor * self._radii[nearest]:
                label = self._labels[nearest]
            else:
                self._n_novelties += 1
                label = f"novelty-{self._n_novelties}"
                edge = to_all[known] - self._radii[known]
                closest = int(np.argmin(edge))
                declared.append(
                    NoveltyCluster(
                        label,
                        position,
                        int(members.shape[0]),
                        tuple(float(v) for v in centers[j]),
                        radius,
                        float(max(edge[closest], 0.0)),
                        self._labels[int(np.flatnonzero(known)[closest])],
                    )
                )
            self._centers = np.vstack([self._centers, centers[j]])
            self._radii = np.append(self._radii, radius)
            self._labels.append(label)
        self._buffer = self._buffer[keep]
        self._buffer_at = self._buffer_at[keep]
        return declared

    def _feed(self, points: np.ndarray) -> tuple[np.ndarray, list[NoveltyCluster]]:
        if not self._centers.size:
            raise ValueError("NoveltyDetector: call fit(X, y) before feeding points")
        flags = np.zeros(points.shape[0], dtype=np.uint8)
        declared: list[NoveltyCluster] = []
        explained = self._explained(points)
        i = 0
        while i < points.shape[0]:
            position = self._n_seen + i
            self._drift = False
            if not explained[i]:
                flags[i] |= 2
                self._buffer = np.vstack([self._buffer, points[i]])
                self._buffer_at = np.append(self._buffer_at, position)
                fresh = self._buffer_at > position - self.buffer_window
                self._buffer, self._buffer_at = self._buffer[fresh], self._buffer_at[fresh]
                self._since_check += 1
                if (
                    self._buffer.shape[0] >= self.min_buffer
                    and self._since_check >= self.check_every
                ):
                    self._since_check = 0
                    n_before = len(self._labels)
                    found = self._judge_buffer(position)
                    if found:
                        self._drift = True
                        flags[i] |= 1
                        declared.extend(found)
                    if len(self._labels) != n_before and i + 1 < points.shape[0]:
                        # The model grew: later points are judged against the new clusters.
                        explained[i + 1 :] = self._explained(points[i + 1 :])
            i += 1
        return flags, declared

    def update(self, x) -> bool:
        """Read one point (a 1-D row of features); return whether a novelty was declared."""
        row = np.asarray(x)
        if row.ndim != 1:
            raise ValueError(f"NoveltyDetector: x must be a 1-D row of features, got {row.ndim}-D")
        self._feed(self._points(row.reshape(1, -1), "x"))
        self._n_seen += 1
        return self._drift

    def update_many(self, xs) -> NoveltyResult:
        """Read a 2-D array of points, as if point by point."""
        points = self._points(xs, "xs")
        start = self._n_seen
        if points.shape[0] == 0:
            empty = np.array([], dtype=np.int64)
            return NoveltyResult(self.name, start, 0, empty, empty.copy())
        flags, declared = self._feed(points)
        self._n_seen += points.shape[0]
        base = DetectionResult.from_flags(self.name, start, flags)
        return NoveltyResult(
            base.detector,
            base.start,
            base.n_items,
            base.drift_indices,
            base.warning_indices,
            tuple(declared),
        )
