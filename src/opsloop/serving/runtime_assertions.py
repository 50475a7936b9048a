"""Model assertions on served answers: a deployment's rules applied to one request.

The rules are the deployment's (:mod:`.deployment_settings`), parsed once when the
definition is loaded, and applied by :func:`opsloop.analysis.assertions.apply_assertions`
to the request's records and the model's answer, vectorised over the records. The
``probability`` a rule sees is the positive class's for a two-class model and the
predicted class's otherwise; for a model without probabilities it is missing, so a rule on
it never fires.

>>> import pandas as pd
>>> from opsloop.analysis.assertions import parse_assertions
>>> from opsloop.serving.loaded_variant import VariantAnswer
>>> rules = parse_assertions([
...     {"name": "minor", "when": "age < 18", "action": "override", "value": "decline"},
...     {"name": "unsure", "when": "0.45 <= probability <= 0.55", "action": "review"}])
>>> checked = check_answer(rules, pd.DataFrame({"age": [17, 40, 60]}),
...     VariantAnswer(["approve", "approve", "decline"],
...                   [[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], ["decline", "approve"]))
>>> checked.answer.predictions, checked.counts, checked.review
(['decline', 'approve', 'decline'], {'minor': 1, 'unsure': 1}, True)
>>> checked.rules
[['minor'], ['unsure'], []]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from opsloop.analysis.assertions import Assertion, AssertionRuleError, apply_assertions
from opsloop.errors import UnavailableError
from opsloop.serving.loaded_variant import VariantAnswer


@dataclass(frozen=True)
class CheckedAnswer:
    """The answer after the rules: ``answer`` with overrides applied, the ``actions`` per
    record (``none``, ``flag``, ``override``, ``review``), the ``rules`` that fired per
    record, ``counts`` of records per rule that fired at least once, and whether any
    record goes to ``review``."""

    answer: VariantAnswer
    actions: list[str]
    rules: list[list[str]]
    counts: dict[str, int]
    actions_of: dict[str, str]

    @property
    def review(self) -> bool:
        """Whether a rule sends a record of the request to review."""
        return "review" in self.actions


def rule_probability(answer: VariantAnswer) -> np.ndarray:
    """The probability a rule sees per record (see the module); NaN when the model has none.

    >>> rule_probability(VariantAnswer([1, 2], [[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], [0, 1, 2]))
    array([0.7, 0.6])
    >>> rule_probability(VariantAnswer([3.5]))
    array([nan])
    """
    if answer.probabilities is None:
        return np.full(len(answer.predictions), np.nan)
    probabilities = np.asarray(answer.probabilities, dtype=np.float64)
    if probabilities.ndim == 2 and probabilities.shape[1] == 2:
        return probabilities[:, 1]
    return probabilities.max(axis=1)


def check_answer(
    rules: Sequence[Assertion], frame: pd.DataFrame, answer: VariantAnswer
) -> CheckedAnswer:
    """Apply ``rules`` to the records ``frame`` and the model's ``answer`` (see the module).

    A rule that cannot be applied to this deployment's records (a field they lack) is the
    deployment's fault, not the client's: it answers 503 naming the rule.
    """
    if not rules:
        n = len(answer.predictions)
        return CheckedAnswer(answer, ["none"] * n, [[] for _ in range(n)], {}, {})
    try:
        result = apply_assertions(
            rules, frame, np.asarray(answer.predictions), rule_probability(answer)
        )
    except AssertionRuleError as error:
        raise UnavailableError(
            f"the deployment's model assertions cannot be applied: {error}"
        ) from None
    predictions = result.predictions.tolist()
    changed = (
        replace(answer, predictions=predictions) if predictions != answer.predictions else answer
    )
    names = np.array(result.fired.columns, dtype=object)
    fired_rows = [names[row].tolist() for row in result.fired.to_numpy(dtype=bool)]
    return CheckedAnswer(
        answer=changed,
        actions=result.actions.tolist(),
        rules=fired_rows,
        counts={name: count for name, count in result.counts.items() if count},
        actions_of={rule.name: rule.action for rule in rules},
    )


__all__ = ["CheckedAnswer", "check_answer", "rule_probability"]
