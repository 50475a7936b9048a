"""Active learning: spend a labelling budget on the rows a classifier learns most from.

* :func:`active_learning` runs the loop for any scikit-learn classifier with ``predict_proba``;
* query strategies live in :mod:`~opsloop.learn.active.strategies` (least confidence, margin,
  entropy, query-by-committee, diversity-aware batches, random);
* :class:`Oracle` is what answers the queries (a human review queue, or
  :class:`SimulatedOracle` for experiments);
* :func:`compare_strategies` draws learning curves of strategies against labels spent.

>>> from opsloop.learn.active import STRATEGY_NAMES
>>> len(STRATEGY_NAMES)
6
"""

from opsloop.learn.active.curves import LearningCurves, compare_strategies
from opsloop.learn.active.loop import ActiveLearningResult, active_learning
from opsloop.learn.active.oracle import Oracle, SimulatedOracle
from opsloop.learn.active.scores import (
    entropy_scores,
    least_confidence_scores,
    margin_scores,
    vote_entropy_scores,
)
from opsloop.learn.active.strategies import (
    STRATEGY_NAMES,
    DiverseUncertaintySampling,
    QueryByCommittee,
    QueryStrategy,
    RandomSampling,
    UncertaintySampling,
    make_strategy,
)

__all__ = [
    "STRATEGY_NAMES",
    "ActiveLearningResult",
    "DiverseUncertaintySampling",
    "LearningCurves",
    "Oracle",
    "QueryByCommittee",
    "QueryStrategy",
    "RandomSampling",
    "SimulatedOracle",
    "UncertaintySampling",
    "active_learning",
    "compare_strategies",
    "entropy_scores",
    "least_confidence_scores",
    "make_strategy",
    "margin_scores",
    "vote_entropy_scores",
]
