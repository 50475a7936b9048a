"""Declarative monitoring rules: ``when <signal> <op> <number> [for N windows] then <action>``.

A rule is parsed by a regular expression, never evaluated as code. ``when`` is optional and
``->`` or ``→`` may stand for ``then``; ``for N windows`` (default 1, at most
:data:`MAX_RULE_WINDOWS`; a ``promote`` rule at most :data:`MAX_PROMOTE_WINDOWS`) asks the
condition to hold in N consecutive windows that give it a verdict. A rule is at most
:data:`MAX_RULE_LENGTH` characters. A window where the signal is undefined
(no labels for a signal judged on labels, a sample expired, a detector the deployment has
off: see :data:`UNDEFINED_WHEN`) gives none: it neither extends nor breaks the streak, so a
rule on a signal only labelled windows define fires with sparse labels (``concept_drift > 0
for 2 windows`` fires at the second labelled window that shows it, however many windows
without labels lie between). A window where the signal is defined and the condition is false
breaks the streak. The alert's evidence lists the windows that held, and the ``skipped``
ones between them (:mod:`.policy_streak`). The signals judged on a window's labelled rows
(:data:`LABELLED_SIGNALS`) are undefined in a window without any, whatever value they show
there (``error_drift`` counts 0 alarms where the detector read no errors).

Signals (per window, see :mod:`.window_metrics`): ``drift_share``, ``missing_share``,
``out_of_schema_rate``, ``error_rate``, ``task_metric``, ``latency_p50_ms``,
``latency_p95_ms``, ``requests``, ``output_drift_p_value``, ``output_drift_statistic``,
``error_drift`` (how many times the error-stream detector signalled in the window: the
detector the deployment's policy chose, ADWIN by default, :mod:`.error_stream`), the
serving workers' ``process_rss_bytes`` and ``process_cpu_seconds`` (:mod:`.process_metrics`),
and the deployment's input anomaly detector's ``input_anomaly_rate`` (flagged requests per
scored request), ``input_anomaly_p_value`` (small when it flags more than its calibration
explains), ``input_scored`` and ``input_flagged`` (:mod:`.input_anomalies`; the rate and
p-value are ``None`` in a window where no request was scored).
``feature_alarms`` counts the alarms of the per-feature detectors in the window
(:mod:`.feature_stream`; ``None`` where the deployment has them off).

Before labels arrive, the estimate from the model's confidence (:mod:`.window_estimate`;
``None`` without the reference's probabilities or the window's): ``estimated_<metric>`` for
``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (two classes) and ``macro_f1``
(more), with ``estimated_<metric>_low`` and ``_high``, the bounds of its interval (a rule
on ``estimated_accuracy_high < 0.8`` fires only when the interval lies below 0.8);
``estimate_trusted`` is 1 when the estimator's assumptions held in the window and 0 when
they broke (scores outside the reference's, a poor calibration).

Input length (:mod:`.input_length`): ``text_length_drift_share`` (the share of text
features whose lengths drift against the reference's), ``records_per_request_mean`` and
``records_per_request_max``. Once labels arrive, a regression's residuals
(``label - prediction``, :mod:`.residuals`): ``residual_mean``, ``residual_std``, the bounds
of the mean's t-interval ``residual_mean_low`` and ``residual_mean_high``, and
``residual_p_value`` (the t-test of a zero mean); ``residual_mean_low > 0`` holds when the
model predicts too low beyond chance.

``data_drift`` and ``concept_drift`` are 1 in a window that shows that kind of decay and 0
otherwise (:mod:`.decay_kind`; ``None`` without labels): a window whose inputs moved and
whose error rose beyond what the move explains (``data_and_concept_drift``) counts as
both, one where it cannot tell (``data_drift_and_error_rise``) as neither.

Actions (every one records the alert with its evidence first; what the action then does is
in :mod:`.policy_actions`):

* ``alert``: only that;
* ``webhook(url=URL, timeout_s=5, retries=2)``: POST the alert as JSON to ``URL``
  (``retries`` at most :data:`MAX_WEBHOOK_RETRIES`);
* ``rollback`` or ``rollback(to=ALIAS)``: put the deployment back on its previous
  definition, or on the version the model's alias ``ALIAS`` names;
* ``retrain(train=MODULE:FUNCTION, reference_share=0, holdout=0.3, min_rows=50,
  window=since_change_point, since=DATE, neighbours=5, tolerance=3)``: train on a window of
  labelled data (below), gate the new version against the one serving, and start its canary when it
  passes;
* ``promote`` or ``promote(alias=champion)``: when the rule holds in a challenger's windows
  (a canary's candidate, a shadow) and the challenger is at least as good as the primary
  in each of them, make it the primary and move the model's alias to it
  (:mod:`.promote_action`). Its operator says which way is better, so it is one of ``>``,
  ``>=``, ``<``, ``<=``.

Options are ``key=value`` pairs separated by commas; a value may not hold a comma or a
parenthesis.

A retraining's ``window`` names the data-window policy (:mod:`.training_window`):

* ``since_change_point`` (the default): discard the data from before the change point and
  add the new data, the labelled rows from the change point to the end of the window that
  fired, plus ``reference_share`` of the reference's labelled sample;
* ``since_date`` with ``since=DATE`` (ISO 8601, ``2027-01-15`` or
  ``2027-01-15T08:00:00Z``; a time without a zone is UTC): discard the data from before
  that date, plus ``reference_share`` of the reference;
* ``new_only``: only the new labelled rows, those of the windows the rule held in (from the
  first window of its streak), nothing older and no share of the reference;
* ``keep_correct``: keep the older labelled data that is still correct and add the new
  data: the rows since the change point, plus those of the reference's labelled sample and
  of the earlier labelled windows whose label the ``neighbours`` nearest new rows agree
  with (for numeric labels: within ``tolerance`` deviations of the new labels' noise, see
  :mod:`.still_correct`).

>>> Policy.parse("concept_drift > 0 -> retrain(train=m:f, window=since_date, "
...              "since=2027-01-15T08:00:00Z)").option("since")
1800000000000
>>> Policy.parse("concept_drift > 0 -> retrain(train=m:f, window=keep_correct, "
...              "neighbours=7)").option("window")
'keep_correct'

>>> rule = Policy.parse("drift_share > 0.3 for 2 windows -> alert")
>>> rule.signal, rule.op, rule.threshold, rule.windows, rule.action
('drift_share', '>', 0.3, 2, 'alert')
>>> rule.holds({"drift_share": 0.5}), rule.holds({"drift_share": None})
(True, False)
>>> [rule.verdict({"drift_share": v}) for v in (0.5, 0.1, None)]
[True, False, None]
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opsloop.errors import InvalidArgumentError

#: The most windows a rule may ask its condition to hold in (``for N windows``). The
#: monitor keeps every window's evaluation, so no retention bounds a streak; 10,000 windows
#: are a week of one-minute windows, 14 months of hourly ones and 27 years of daily ones, so
#: a longer streak would never complete, and a bound of five digits lets a number of
#: thousands of digits be refused before it is converted.
MAX_RULE_WINDOWS = 10_000
#: The most windows a ``promote`` rule may ask for: it compares the challenger with the
#: primary in each window of its streak, and a streak lists the latest 100 windows that held
#: (:data:`.policy_streak.MAX_LISTED_HELD`, which a test keeps equal).
MAX_PROMOTE_WINDOWS = 100
#: The most times a webhook is tried again: the wait doubles from 0.5 s each time, so 5
#: retries wait 15.5 s in all (and as many time-outs), which an evaluation waits for.
MAX_WEBHOOK_RETRIES = 5
#: The longest rule, in characters (the REST operations' bound too).
MAX_RULE_LENGTH = 1000
#: The metrics the label-free estimate gives (:mod:`.window_estimate`).
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "macro_f1")
SIGNALS = (
    "drift_share",
    "missing_share",
    "out_of_schema_rate",
    "error_rate",
    "task_metric",
    "latency_p50_ms",
    "latency_p95_ms",
    "requests",
    "output_drift_p_value",
    "output_drift_statistic",
    "error_drift",
    "data_drift",
    "concept_drift",
    "previous_drift_share",
    "process_rss_bytes",
    "process_cpu_seconds",
    "estimate_trusted",
    "input_anomaly_rate",
    "input_anomaly_p_value",
    "input_scored",
    "input_flagged",
    "text_length_drift_share",
    "records_per_request_mean",
    "records_per_request_max",
    "residual_mean",
    "residual_std",
    "residual_mean_low",
    "residual_mean_high",
    "residual_p_value",
    "feature_alarms",
    *(
        f"estimated_{metric}{bound}"
        for metric in ESTIMATED_METRICS
        for bound in ("", "_low", "_high")
    ),
)
#: The signals judged on a window's labelled rows: undefined in a window without any.
LABELLED_SIGNALS = (
    "task_metric",
    "error_drift",
    "data_drift",
    "concept_drift",
    "residual_mean",
    "residual_std",
    "residual_mean_low",
    "residual_mean_high",
    "residual_p_value",
)
_ESTIMATE_UNDEFINED = (
    "no estimate in the window: the reference keeps no probabilities and labels, or the "
    "window's answers give no probabilities"
)
# The reasons that several signals share (the signals of one test, one profile...).
_NO_LABELS = "no labelled row in the window"
_NO_LATENCY = "no latency recorded, or the quantile lies above the histogram's last bound"
_NO_OUTPUT_TEST = (
    "no output drift test: the reference keeps no predictions, the sample expired or holds "
    "no prediction"
)
_NO_DECAY = "no kind of decay decided: no labelled row, or no error history before the window"
_NO_PROCESS_SAMPLE = "no serving worker's process sample in the window"
_NO_INPUT_SCORE = "no request scored by the input anomaly detector"
_NO_INPUT_DETECTOR = "no input anomaly detector and no request scored"
_NO_RECORD_COUNT = "no request's record count in the window's profile"
_NO_RESIDUAL_INTERVAL = (
    "fewer than two labelled rows, a classifier's, or residuals that do not vary"
)
#: When each signal is undefined in an evaluated window (no verdict: the window neither
#: extends nor breaks a streak); ``None`` for a signal every evaluated window defines.
UNDEFINED_WHEN: dict[str, str | None] = {
    "drift_share": "no feature compared: the window's sample expired, or the reference "
    "has no sample or none of the window's features",
    "missing_share": "the window's profile has no rows",
    "out_of_schema_rate": "the window's sample expired, or holds none of the reference's features",
    "error_rate": "no request in the window",
    "task_metric": _NO_LABELS,
    "latency_p50_ms": _NO_LATENCY,
    "latency_p95_ms": _NO_LATENCY,
    # An evaluated window is one that received requests.
    "requests": None,
    "output_drift_p_value": _NO_OUTPUT_TEST,
    "output_drift_statistic": _NO_OUTPUT_TEST,
    "error_drift": f"{_NO_LABELS} (the detector read no error), or a "
    "detector that reads no errors of this kind (PageHinkley, DDM on a regression's)",
    "data_drift": _NO_DECAY,
    "concept_drift": _NO_DECAY,
    "previous_drift_share": "the variant's first window, or the sample of this window or "
    "the one before expired",
    "process_rss_bytes": _NO_PROCESS_SAMPLE,
    "process_cpu_seconds": _NO_PROCESS_SAMPLE,
    "estimate_trusted": _ESTIMATE_UNDEFINED,
    "input_anomaly_rate": _NO_INPUT_SCORE,
    "input_anomaly_p_value": _NO_INPUT_SCORE,
    "input_scored": _NO_INPUT_DETECTOR,
    "input_flagged": _NO_INPUT_DETECTOR,
    "text_length_drift_share": "no text feature compared (none in the reference, or the "
    "window's sample expired)",
    "records_per_request_mean": _NO_RECORD_COUNT,
    "records_per_request_max": _NO_RECORD_COUNT,
    "residual_mean": "no labelled row, or a classifier's (residuals are a regression's)",
    "residual_std": "fewer than two labelled rows, or a classifier's",
    "residual_mean_low": _NO_RESIDUAL_INTERVAL,
    "residual_mean_high": _NO_RESIDUAL_INTERVAL,
    "residual_p_value": _NO_RESIDUAL_INTERVAL,
    "feature_alarms": "the deployment has its per-feature detectors off",
    **{
        f"estimated_{metric}{bound}": _ESTIMATE_UNDEFINED
        + ("" if metric not in ("roc_auc",) else ", or more than two classes")
        for metric in ESTIMATED_METRICS
        for bound in ("", "_low", "_high")
    },
}
#: Each action's options: name -> (kind, default); a default of ``None`` marks one needed.
ACTION_OPTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "alert": {},
    "webhook": {"url": ("url", None), "timeout_s": ("seconds", 5.0), "retries": ("retries", 2)},
    "rollback": {"to": ("name", "")},
    "retrain": {
        "train": ("entry_point", None),
        "reference_share": ("share", 0.0),
        "holdout": ("fraction", 0.3),
        "min_rows": ("count", 50),
        "window": ("window", "since_change_point"),
        # No date unless the window names one (``since_date``); checked with ``window``.
        "since": ("date", ""),
        "neighbours": ("positive", 5),
        # keep_correct on numeric labels: agreement within this many noise deviations.
        "tolerance": ("deviations", 3.0),
    },
    "promote": {"alias": ("name", "champion")},
}
ACTIONS = tuple(ACTION_OPTIONS)
#: The data-window policies a retraining may name (see the module docstring).
WINDOW_POLICIES = ("since_change_point", "since_date", "new_only", "keep_correct")
_OPERATORS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
# A number in the digits 0-9 only, as a count is: ``\d`` would take any script's digits
# (Arabic-Indic, full-width...), which ``float`` reads but a person may not see as digits.
_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
# A number as any script writes it: what the error for a threshold not in 0-9 recognises.
_ANY_SCRIPT_NUMBER = re.compile(r"\s*(?P<number>[-+]?[\d.\u066b]*\d[\d.\u066b]*(?:[eE][-+]?\d+)?)")
_ASCII_NUMBER = re.compile(_NUMBER)
_RULE = re.compile(
    r"^\s*(?:when\s+)?(?P<signal>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    rf"(?P<threshold>{_NUMBER})"
    r"(?:\s+for\s+(?P<windows>[0-9]+)\s+windows?)?\s*(?:->|→|\bthen\b)\s*"
    r"(?P<action>[A-Za-z_]+)\s*(?:\((?P<options>[^()]*)\))?\s*$"
)
#: The grammar in words, both spellings, for an error.
RULE_FORMS = (
    "'<signal> <op> <number> [for N windows] -> <action>[(key=value, ...)]' "
    "or 'when <signal> <op> <number> [for N windows] then <action>[(...)]'"
)
#: The rule's parts in order, each with what the error says when it is not found next.
_PARTS = (
    (re.compile(r"\s*(?:when\s+)?[A-Za-z_][A-Za-z0-9_]*"), "a signal name"),
    (re.compile(r"\s*(?:>=|<=|==|!=|>|<)"), "an operator (>, >=, <, <=, ==, !=)"),
    (re.compile(rf"\s*{_NUMBER}"), "a number"),
    # Nothing when no 'for' follows; a 'for' must read 'for N windows'.
    (re.compile(r"(?!\s+for\b)|\s+for\s+[0-9]+\s+windows?\b"), "'for N windows' (N whole)"),
    (re.compile(r"\s*(?:->|→|\bthen\b)"), "'->' (or 'then') before the action"),
    (re.compile(r"\s*[A-Za-z_]+"), "an action name"),
    (re.compile(r"\s*(?:\([^()]*\))?"), "the action's (options)"),
    (re.compile(r"\s*$"), "the end of the rule (options in one pair of parentheses)"),
)
#: The longest piece of a rule an error quotes.
_FOUND_SHOWN = 24
# A 'for' followed by a count that is no whole number ('for -1 windows', 'for 1.5 windows').
_FOR_COUNT = re.compile(r"\s+for\s+(?P<count>\S+)\s+windows?\b")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _option(text: str, action: str, key: str, kind: str, raw: str) -> Any:
    where = f"policy {text!r}: {action} option {key}"
    if kind == "url":
        if not raw.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"{where}: an http:// or https:// URL, got {raw!r}")
        return raw
    if kind == "name":
        if not _NAME.match(raw):
            raise InvalidArgumentError(f"{where}: an alias name, got {raw!r}")
        return raw
    if kind == "entry_point":
        if not _ENTRY_POINT.match(raw):
            raise InvalidArgumentError(
                f"{where}: a Python entry point 'package.module:function', got {raw!r}"
            )
        return raw
    if kind == "window":
        if raw not in WINDOW_POLICIES:
            raise InvalidArgumentError(f"{where}: one of {', '.join(WINDOW_POLICIES)}, got {raw!r}")
        return raw
    if kind == "date":
        return iso_ms(raw, where)
    try:
        number = int(raw) if kind in ("count", "positive", "retries") else float(raw)
    except ValueError:
        number = None
    # int() and float() read any script's digits and 'inf': an option's number is written
    # in the digits 0-9, as a threshold is. Underscores between digits (min_rows=1_000)
    # were always read (where int() and float() place them), and policies stored with them
    # must still parse.
    if not _ASCII_NUMBER.fullmatch(raw.replace("_", "")):
        number = None
    bounds = {
        "count": (number is not None and number >= 0, "a whole number >= 0"),
        "positive": (number is not None and number >= 1, "a whole number >= 1"),
        "retries": (
            number is not None and 0 <= number <= MAX_WEBHOOK_RETRIES,
            f"a whole number from 0 to {MAX_WEBHOOK_RETRIES}",
        ),
        "seconds": (number is not None and 0 < number <= 60, "seconds in (0, 60]"),
        "share": (number is not None and 0 <= number <= 1, "a share in [0, 1]"),
        "fraction": (number is not None and 0 < number < 1, "a fraction in (0, 1)"),
        "deviations": (number is not None and 0 <= number < math.inf, "a number >= 0"),
    }
    ok, rule = bounds[kind]
    if not ok:
        script = "" if raw.isascii() else " in the digits 0-9"
        raise InvalidArgumentError(f"{where}: {rule}{script}, got {raw!r}")
    return number


def _options(text: str, action: str, written: str | None) -> tuple[tuple[str, Any], ...]:
    allowed = ACTION_OPTIONS[action]
    given: dict[str, str] = {}
    for part in (written or "").split(","):
        if not part.strip():
            continue
        key, equals, raw = part.partition("=")
        key = key.strip()
        if not equals or key not in allowed:
            names = ", ".join(allowed) or "none"
            raise InvalidArgumentError(
                f"policy {text!r}: {action} takes key=value options ({names}), got {part.strip()!r}"
            )
        given[key] = raw.strip()
    values = []
    for key, (kind, default) in allowed.items():
        if key not in given and default is None:
            raise InvalidArgumentError(f"policy {text!r}: {action} needs the option {key}=...")
        value = _option(text, action, key, kind, given[key]) if key in given else default
        values.append((key, value))
    if action == "retrain":
        _check_window(text, dict(values), given)
    return tuple(values)


def _check_window(text: str, values: dict[str, Any], given: dict[str, str]) -> None:
    """The options that go together with a retraining's ``window``."""
    where, window = f"policy {text!r}: retrain option", values["window"]
    if window == "since_date" and "since" not in given:
        raise InvalidArgumentError(f"{where} since: window=since_date needs since=DATE")
    if window != "since_date" and "since" in given:
        raise InvalidArgumentError(f"{where} since: only with window=since_date, got {window}")
    if window in ("new_only", "keep_correct") and values["reference_share"] > 0:
        raise InvalidArgumentError(
            f"{where} reference_share: window={window} takes no share of the reference"
        )
    for key in ("neighbours", "tolerance"):
        if window != "keep_correct" and key in given:
            raise InvalidArgumentError(
                f"{where} {key}: only with window=keep_correct, got {window}"
            )


def _what_failed(text: str) -> str:
    """Which part of a rule that is not one fails first: what was expected, after what,
    and what was found instead (an excerpt).

    >>> _what_failed("drift_share > abc -> alert")
    "expected a number after '>', found 'abc'"
    >>> _what_failed("drift_share > 0.3 for two windows -> alert")
    "for N windows: N must be a whole number between 1 and 10000, got 'two'"
    >>> _what_failed("drift_share > 0.3 for windows -> alert")
    "expected 'for N windows' (N whole) after '0.3', found 'for'"
    >>> _what_failed("drift_share > 0.3")
    "expected '->' (or 'then') before the action after '0.3', found the end of the rule"
    >>> _what_failed("drift_share > \u0660.\u0665 -> alert")  # Arabic-Indic digits
    "the number after '>': written in the digits 0-9, got '\u0660.\u0665'"
    """
    position, previous = 0, ""
    for pattern, expected in _PARTS:
        found = pattern.match(text, position)
        count = None if found is not None else _FOR_COUNT.match(text, position)
        if count is not None:
            return _windows_rule(count.group("count"), "a whole number ")
        # A number with a digit of another script: refused as such, even where its first
        # digits are 0-9 ('1\u0665'), since the rest would be read as the next part.
        other_script = _ANY_SCRIPT_NUMBER.match(text, position) if expected == "a number" else None
        if other_script is not None and not other_script.group("number").isascii():
            number = _excerpt(other_script.group("number"))
            return f"the number after {previous!r}: written in the digits 0-9, got {number}"
        if found is None:
            rest = text[position:].strip()
            if not rest:
                seen = "the end of the rule"
            else:
                word = rest.split()[0]
                seen = repr(word if len(word) <= _FOUND_SHOWN else word[:_FOUND_SHOWN] + "…")
            after = f" after {previous!r}" if previous else ""
            return f"expected {expected}{after}, found {seen}"
        if found.group().strip():
            previous = found.group().strip()
            if len(previous) > _FOUND_SHOWN:
                previous = previous[:_FOUND_SHOWN] + "…"
        position = found.end()
    return "not a rule"


def _did_you_mean(name: str, known) -> str:
    """The known name closest to a misspelled one, as a suggestion ('' when none is close).

    >>> _did_you_mean("drift_shar", SIGNALS), _did_you_mean("zzz", SIGNALS)
    ("; did you mean 'drift_share'?", '')
    """
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _excerpt(text: str) -> str:
    """``text`` quoted, cut to :data:`_FOUND_SHOWN` characters.

    >>> _excerpt("9" * 30)
    "'999999999999999999999999…'"
    """
    return repr(text if len(text) <= _FOUND_SHOWN else text[:_FOUND_SHOWN] + "…")


def _windows_rule(count: str, kind: str = "") -> str:
    """The rule a ``for N windows`` count breaks, with the count given (cut when long).

    >>> _windows_rule("0")
    "for N windows: N must be between 1 and 10000, got '0'"
    """
    return f"for N windows: N must be {kind}between 1 and {MAX_RULE_WINDOWS}, got {_excerpt(count)}"


def _windows(text: str, written: str | None, action: str) -> int:
    """The count of a rule's ``for N windows`` (1 when it has none), within its bounds."""
    if written is None:
        return 1
    # At most the bound's digits after leading zeros: a number of thousands of digits is
    # refused without converting it (Python refuses to convert one past 4,300 digits).
    digits = written.lstrip("0")
    count = int(digits) if 0 < len(digits) <= len(str(MAX_RULE_WINDOWS)) else 0
    if not 1 <= count <= MAX_RULE_WINDOWS:
        raise InvalidArgumentError(f"policy {text!r}: {_windows_rule(written)}")
    if action == "promote" and count > MAX_PROMOTE_WINDOWS:
        raise InvalidArgumentError(
            f"policy {text!r}: for N windows: a promote rule's N must be between 1 and "
            f"{MAX_PROMOTE_WINDOWS} (each window of its streak is compared with the "
            f"primary's, and a streak lists the latest {MAX_PROMOTE_WINDOWS}), got {count}"
        )
    return count


def rule_action(text: str) -> str:
    """The action a rule names (read from its text: a rule of a grammar this version no
    longer reads still names its action after its arrow).

    >>> rule_action("error_rate > 0.1 -> webhook(url=http://h/, retries=0)")
    'webhook'
    """
    try:
        return Policy.parse(text).action
    except InvalidArgumentError:
        return text.rsplit("->", 1)[-1].strip().split("(", 1)[0].strip() or "unknown"


def iso_ms(text: str, where: str = "since") -> int:
    """Milliseconds since the epoch of an ISO 8601 date or date and time (UTC when it names
    no zone); ``where`` names the field in the error.

    >>> iso_ms("2027-01-15"), iso_ms("2027-01-15T09:00:00+01:00")
    (1799971200000, 1800000000000)
    >>> iso_ms("15/01/2027")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: since: an ISO 8601 date or date and time (2027-01-15, 2027-01-15T08:00:00Z), got '15/01/2027'
    """  # noqa: E501 - a doctest's expected output is one line
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(
            f"{where}: an ISO 8601 date or date and time (2027-01-15, 2027-01-15T08:00:00Z), "
            f"got {text!r}"
        ) from None
    if found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return round(found.timestamp() * 1000)


def _estimated(estimate: dict[str, Any] | None, signal: str) -> float | None:
    """An ``estimated_*`` signal, or ``estimate_trusted``, of a window's estimate.

    >>> _estimated({"metrics": {"f1": {"value": 0.7, "low": 0.6}}}, "estimated_f1_low")
    0.6
    """
    if estimate is None:
        return None
    if signal == "estimate_trusted":
        return float(bool(estimate["trusted"]))
    name = signal.removeprefix("estimated_")
    bound = "value"
    for suffix in ("_low", "_high"):
        if name.endswith(suffix):
            name, bound = name.removesuffix(suffix), suffix[1:]
    found = estimate["metrics"].get(name)
    return None if found is None else found.get(bound)


@dataclass(frozen=True)
class Policy:
    """One parsed rule; ``text`` is the rule as written."""

    signal: str
    op: str
    threshold: float
    windows: int
    action: str
    text: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Policy:
        """Parse a rule, naming what is wrong when it is not one.

        >>> Policy.parse("error_rate > 0.1 then retrain")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: policy 'error_rate > 0.1 then retrain': retrain needs the option train=...
        >>> Policy.parse("task_metric == 1 then promote")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: policy 'task_metric == 1 then promote': promote needs an operator that says which way is better (>, >=, <, <=), got '=='
        >>> Policy.parse("concept_drift > 0 -> retrain(train=credit.fit:train, holdout=2)")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: policy 'concept_drift > 0 -> retrain(train=credit.fit:train, holdout=2)': retrain option holdout: a fraction in (0, 1), got '2'
        >>> Policy.parse("__import__('os') -> alert")
        Traceback (most recent call last):
        opsloop.errors.InvalidArgumentError: policy "__import__('os') -> alert": expected an operator (>, >=, <, <=, ==, !=) after '__import__', found "('os')"; a rule reads '<signal> <op> <number> [for N windows] -> <action>[(key=value, ...)]' or 'when <signal> <op> <number> [for N windows] then <action>[(...)]'
        """  # noqa: E501 - a doctest's expected output is one line
        if not isinstance(text, str):
            raise InvalidArgumentError(f"policy: a rule as text, got {type(text).__name__}")
        if len(text) > MAX_RULE_LENGTH:
            raise InvalidArgumentError(
                f"policy {_excerpt(text)}: at most {MAX_RULE_LENGTH} characters, got {len(text)}"
            )
        match = _RULE.match(text)
        if match is None:
            raise InvalidArgumentError(
                f"policy {text!r}: {_what_failed(text)}; a rule reads {RULE_FORMS}"
            )
        signal, action = match.group("signal"), match.group("action")
        if signal not in SIGNALS:
            raise InvalidArgumentError(
                f"policy {text!r}: unknown signal {signal!r}{_did_you_mean(signal, SIGNALS)} "
                f"(signals: {', '.join(SIGNALS)})"
            )
        if action not in ACTIONS:
            raise InvalidArgumentError(
                f"policy {text!r}: unknown action {action!r}{_did_you_mean(action, ACTIONS)} "
                f"(available: {', '.join(ACTIONS)})"
            )
        if action == "promote" and match.group("op") in ("==", "!="):
            raise InvalidArgumentError(
                f"policy {text!r}: promote needs an operator that says which way is better "
                f"(>, >=, <, <=), got {match.group('op')!r}"
            )
        threshold = float(match.group("threshold"))
        if not math.isfinite(threshold):
            raise InvalidArgumentError(
                f"policy {text!r}: the number {_excerpt(match.group('threshold'))} is out of "
                "range: a finite number"
            )
        windows = _windows(text, match.group("windows"), action)
        options = _options(text, action, match.group("options"))
        return cls(
            signal,
            match.group("op"),
            threshold,
            windows,
            action,
            text,
            options,
        )

    def option(self, name: str) -> Any:
        """The value of the action's option ``name`` (its default when the rule gives none).

        >>> rule = Policy.parse("error_drift > 0 -> webhook(url=http://127.0.0.1:9/hook)")
        >>> rule.option("url"), rule.option("retries")
        ('http://127.0.0.1:9/hook', 2)
        """
        return dict(self.options)[name]

    def value(self, metrics: dict[str, Any]) -> float | None:
        """The rule's signal in a window's metrics (``None`` when the window has none).

        >>> Policy.parse("output_drift_p_value < 0.01 -> alert").value(
        ...     {"output_drift": {"p_value": 0.002}})
        0.002
        """
        if self.signal.startswith("estimate"):
            return _estimated(metrics.get("estimate"), self.signal)
        if self.signal.startswith("output_drift_"):
            output = metrics.get("output_drift")
            return None if output is None else output.get(self.signal.removeprefix("output_drift_"))
        return metrics.get(self.signal)

    def holds(self, metrics: dict[str, Any]) -> bool:
        """Whether the condition holds in a window with these metrics (:meth:`verdict`
        is ``True``).

        >>> rule = Policy.parse("task_metric < 0.8 -> alert")
        >>> rule.holds({"task_metric": 0.5}), rule.holds({"task_metric": 0.5, "labelled": 0})
        (True, False)
        """
        return self.verdict(metrics) is True

    def verdict(self, metrics: dict[str, Any]) -> bool | None:
        """Whether the condition holds in a window with these metrics, or ``None`` where
        the signal is undefined in it (no value, or a signal judged on labels in a window
        whose ``labelled`` count is 0): such a window neither extends nor breaks a streak.
        Metrics without a ``labelled`` count are judged on the signal's value alone.

        >>> rule = Policy.parse("error_drift > 0 for 2 windows -> alert")
        >>> rule.verdict({"error_drift": 0, "labelled": 0}), rule.verdict(
        ...     {"error_drift": 0, "labelled": 40}), rule.verdict({"error_drift": 1})
        (None, False, True)
        """
        value = self.value(metrics)
        if value is None:
            return None
        # Only a window known to hold no labelled row: metrics built by a caller that
        # does not count labels keep the verdict of their value.
        if self.signal in LABELLED_SIGNALS and metrics.get("labelled", 1) == 0:
            return None
        return bool(_OPERATORS[self.op](float(value), self.threshold))
