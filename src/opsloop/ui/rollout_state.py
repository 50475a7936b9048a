"""A deployment's rollout as its pages show it: a canary's gates with their decisions now, a
bandit's arms with their rewards, posteriors and traffic shares (the results page, and the
deployment page's live status)."""

from __future__ import annotations

from typing import Any

from opsloop.analysis.drift_gate import DriftGate
from opsloop.analysis.sequential import MeanGate
from opsloop.errors import NotFoundError
from opsloop.learn.bandits import GaussianThompson, policy_from_dict


def rollout_of(deployments: Any, name: str) -> dict[str, Any] | None:
    """The deployment's rollout (policy, state, gates' decisions), or ``None`` if none is set."""
    try:
        return deployments.rollout(name)
    except NotFoundError:  # no rollout was set: the page says so
        return None


def bandit_arms(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    """A bandit rollout's arms: rewards counted and summed, their mean, the posterior where
    the policy keeps one (``Beta(a, b)`` for Bernoulli Thompson sampling, the normal's mean
    for Gaussian), and the share of traffic the arm gets now.

    >>> arms = bandit_arms({"state": {"kind": "bandit", "policy": {
    ...     "policy": "bernoulli_thompson", "arms": ["a", "b"],
    ...     "params": {"prior_a": 1.0, "prior_b": 1.0, "draws": 100},
    ...     "state": {"counts": [4, 0], "sums": [3.0, 0.0]}}}, "shares": {"a": 0.9, "b": 0.1}})
    >>> [(a["arm"], a["mean"], a["posterior"], a["posterior_mean"], a["share"]) for a in arms]
    [('a', 0.75, 'Beta(4, 2)', 0.6666666666666666, 0.9), ('b', None, 'Beta(1, 1)', 0.5, 0.1)]
    """
    document = rollout["state"]["policy"]
    policy = policy_from_dict(document)
    counts, sums = policy.counts, policy.sums
    posteriors: list[tuple[str, float] | None] = [None] * len(policy.arms)
    if document["policy"] == "bernoulli_thompson":
        a = document["params"]["prior_a"] + sums
        b = document["params"]["prior_b"] + counts - sums
        posteriors = [
            (f"Beta({x:g}, {y:g})", float(x / (x + y))) for x, y in zip(a, b, strict=True)
        ]
    elif isinstance(policy, GaussianThompson):
        post = policy.posterior()
        posteriors = [
            (f"mean {m:.4g}, count {k:g}, shape {s:g}, scale {c:.4g}", float(m))
            for m, k, s, c in zip(
                post["mean"], post["count"], post["shape"], post["scale"], strict=True
            )
        ]
    shares = rollout.get("shares", {})
    return [
        {
            "arm": arm,
            "rewards": int(n),
            "reward_sum": float(total),
            "mean": float(total / n) if n else None,
            "posterior": None if posterior is None else posterior[0],
            "posterior_mean": None if posterior is None else posterior[1],
            "share": shares.get(arm),
        }
        for arm, n, total, posterior in zip(policy.arms, counts, sums, posteriors, strict=True)
    ]


def canary_gates(rollout: dict[str, Any]) -> list[dict[str, Any]]:
    """A canary rollout's gates as one table's rows, whatever each gate's kind: its decision
    now (verdict, test, statistic, thresholds), what each arm gave it (``candidate`` and
    ``primary``: events of requests for a rate gate, rows for a drift or mean gate), the
    evidence peculiar to its kind in words (``detail``: a drift gate's look, level and
    feature; a mean gate's interval; a one-sample gate's rates) and the parameters it runs
    with (the defaults filled in; unset ones left out). A key a kind of decision does not
    carry is ``None``, never missing.

    >>> gates = canary_gates({"state": {"gates": {
    ...     "errors": {"params": {"alpha": 0.01, "beta": None}},
    ...     "drift": {"params": {"alpha": 0.05, "min_rows": 50}}}},
    ...     "decisions": {
    ...     "errors": {"verdict": "continue", "test": "rate_sprt", "statistic": 0.5,
    ...                "fail_threshold": 2.9, "pass_threshold": None, "n_candidate": 4,
    ...                "n_primary": 36, "events_candidate": 1, "events_primary": 0},
    ...     "drift": {"verdict": "fail", "test": "drift_spending", "look": 1,
    ...               "fail_threshold": 0.0125, "feature": "x", "statistic": 0.4,
    ...               "p_value": 0.001, "n_candidate": 120, "n_primary": 400}}})
    >>> [(g["gate"], g["candidate"], g["primary"], g["pass_threshold"]) for g in gates]
    [('errors', '1 / 4', '0 / 36', None), ('drift', '120 rows', '400 rows', None)]
    >>> gates[0]["params"], gates[1]["detail"]
    ({'alpha': 0.01}, "look 1 at level 0.0125 (at most 0.0375 of alpha 0.05 spent); feature 'x', adjusted p-value 0.001")
    """  # noqa: E501 - a doctest's expected output is one line
    gates = rollout["state"]["gates"]
    rows = []
    for name, decision in rollout.get("decisions", {}).items():
        params = {
            key: value
            for key, value in gates.get(name, {}).get("params", {}).items()
            if value is not None
        }
        rows.append(
            {
                "gate": name,
                "verdict": decision.get("verdict"),
                "test": decision.get("test"),
                "statistic": decision.get("statistic"),
                "fail_threshold": decision.get("fail_threshold"),
                "pass_threshold": decision.get("pass_threshold"),
                "candidate": _arm_counts(decision, "candidate"),
                "primary": _arm_counts(decision, "primary"),
                "detail": _detail(name, decision, params),
                "params": params,
            }
        )
    return rows


def _arm_counts(decision: dict[str, Any], arm: str) -> str:
    """What one arm gave a gate: ``events / requests`` for a gate that counts events, the
    rows for one that reads rows (drift, a mean gate); ``not read`` for the primary of a
    gate that never reads it (the one-sample disagreement gate)."""
    events, n = decision.get(f"events_{arm}"), decision.get(f"n_{arm}") or 0
    if events is not None:
        return f"{events} / {n}"
    if decision.get("test") == DriftGate.test or decision.get("test") == MeanGate.test:
        return f"{n} rows"
    return "not read" if not n else f"{n} requests"


def _detail(name: str, decision: dict[str, Any], params: dict[str, Any]) -> str:
    """The evidence a gate's kind adds to the common columns, in words."""
    test = decision.get("test")
    if test == DriftGate.test:
        look = decision.get("look")
        if look is None:
            return f"no look yet: the first comes at {params.get('min_rows', '?')} candidate rows"
        alpha = params.get("alpha")
        spent = (
            ""
            if alpha is None
            # Looks 0..k spend alpha/2 + ... + alpha/2**(k+1); a skipped look spends nothing.
            else f" (at most {alpha * (1 - 2.0 ** -(look + 1)):.4g} of alpha {alpha:g} spent)"
        )
        level = decision.get("fail_threshold")
        text = f"look {look} at level {level:.4g}{spent}" if level is not None else f"look {look}"
        feature, p_value = decision.get("feature"), decision.get("p_value")
        if feature is not None:
            text += f"; feature {feature!r}"
            if p_value is not None:
                text += f", adjusted p-value {p_value:.3g}"
        return text
    if test == MeanGate.test:
        lower, upper = decision.get("lower"), decision.get("upper")
        if lower is None or upper is None:
            return "no interval yet"
        # The estimate gate's bounds are of the primary minus the candidate (accuracy is
        # worse when lower); a loss's (the metric gate's) of the candidate minus the primary.
        low, high = (-upper, -lower) if name == "estimate" else (lower, upper)
        return f"candidate minus primary in [{low:.4f}, {high:.4f}]"
    if decision.get("max_rate") is not None:
        detect = decision.get("detect_rate")
        against = "" if detect is None else f" (alternative {detect:.4g})"
        return f"accepted rate {decision['max_rate']:.4g}{against}"
    return ""


#: What follows a decision not carried out (its note's ``then``), in words.
_THEN = {
    "retry": "the ramp decides it again at its next request{backoff}",
    "wait": "the step is decided again after {min_requests} more requests to the candidate, "
    "at the share the deployment routes by now",
}
#: What a person does once the ramp is halted: it neither ramps nor rolls back on its own.
HALTED_ACTION = (
    "The ramp is halted: it changes the deployment no more. Decide yourself: take the "
    "candidate out (its weight to 0 on the deployment page) or restore an earlier definition, "
    "or keep the traffic as it is; set the rollout again to start a new ramp."
)


def decision_outcome(rollout: dict[str, Any]) -> dict[str, Any] | None:
    """What became of a canary's last decision, as the page says it: ``outcome`` in words
    (``carried out``, ``pending``, ``not carried out``), and when it was not, ``why`` and
    ``next`` (what the ramp does now, or what a person should do once it is halted, with
    how often it was tried and the first cause). ``None`` when the ramp decided nothing yet.

    >>> notice = decision_outcome({"policy": {"min_requests": 50}, "state": {
    ...     "status": "halted", "decision": {"action": "rollback", "outcome": "not_carried_out",
    ...     "not_carried_out": {"why": "the control plane refused it: no approvals",
    ...                         "then": "halt", "at_ms": 9}}}})
    >>> notice["outcome"], notice["why"]
    ('not carried out', 'the control plane refused it: no approvals')
    >>> notice["next"].startswith("The ramp is halted")
    True
    >>> decision_outcome({"policy": {}, "state": {"decision": {"action": "step"}}})["outcome"]
    'pending'
    """
    state = rollout["state"]
    decision = state.get("decision")
    if decision is None:
        return None
    outcome = decision.get("outcome", "pending")  # none kept: as the ramp counts it
    notice: dict[str, Any] = {"outcome": outcome.replace("_", " "), "why": None, "next": None}
    note = decision.get("not_carried_out")
    if outcome != "not_carried_out" or note is None:
        return notice
    notice["why"] = note.get("why")
    if note.get("then") == "halt" or state.get("status") == "halted":
        tried = ""
        if note.get("attempts"):
            first = note.get("first") or {}
            tried = f" It was tried {note['attempts']} times; the first cause: {first.get('why')}."
        notice["next"] = HALTED_ACTION + tried
        return notice
    wait = (state.get("retrying") or {}).get("wait", 0)
    backoff = f", after {wait} more requests" if wait else ""
    min_requests = rollout.get("policy", {}).get("min_requests")
    then = _THEN.get(note.get("then", ""), "")
    notice["next"] = then.format(backoff=backoff, min_requests=min_requests) or None
    return notice
