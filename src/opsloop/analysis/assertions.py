"""Model assertions: business rules on a model's inputs and outputs that flag, override or
send a prediction to review.

A rule is a name, a condition, an action and, to override, the value to answer instead::

    {"name": "minor", "when": "age < 18", "action": "override", "value": "decline"}
    {"name": "large loan", "when": "loan_amount > 50000", "action": "review"}
    {"name": "unsure", "when": "0.45 <= probability <= 0.55", "action": "review"}
    {"name": "odd", "when": {"field": "purpose", "op": "in", "value": ["boat", "art"]},
     "action": "flag"}

The condition is text in a small expression language or the same thing as a dict (what a
YAML file gives after ``yaml.safe_load``):

* text: comparisons ``< <= > >= == !=`` (chained, as ``0.45 <= probability <= 0.55``),
  ``in [..]`` and ``not in [..]``, ``and``, ``or``, ``not``, parentheses, ``+ - * /``,
  numbers, quoted strings, ``true``/``false``; a field with spaces is written in backticks;
* dict: ``{"field", "op", "value"}`` with ``op`` one of the comparisons, ``in``, ``not in``
  or ``between`` (``value`` is ``[low, high]``, both included); ``{"all": [...]}``,
  ``{"any": [...]}``, ``{"not": {...}}``.

Fields are the input's columns plus ``prediction`` and ``probability`` (the model's
outputs). Text is parsed by a tokenizer and a recursive-descent parser into a tree that is
evaluated on whole columns with numpy; nothing is ever passed to ``eval``. Missing values
make a comparison false.

Actions, by rank when several rules fire on one row: ``review`` (a person decides; the row
goes to the review queue) over ``override`` (the first firing override rule's value
replaces the prediction) over ``flag`` (kept, marked). Every firing is counted per rule.

Written here, not taken from a library: pandas' ``DataFrame.eval``/``query`` and numexpr
parse with Python's own parser and reach attributes and functions, so they are not a safe
place for rules that users type; rule engines (``durable_rules``, ``business-rules``)
evaluate row by row.

>>> import pandas as pd
>>> X = pd.DataFrame({"age": [17, 40, 52], "loan_amount": [1000, 60000, 2000]})
>>> rules = [
...     {"name": "minor", "when": "age < 18", "action": "override", "value": "decline"},
...     {"name": "large loan", "when": "loan_amount > 50000", "action": "review"},
... ]
>>> result = apply_assertions(rules, X, ["approve", "approve", "approve"])
>>> result.actions.tolist(), result.predictions.tolist(), result.counts
(['override', 'review', 'none'], ['decline', 'approve', 'approve'], {'minor': 1, 'large loan': 1})
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from opsloop.data.excerpt import excerpt
from opsloop.errors import InvalidArgumentError

ACTIONS = ("flag", "override", "review")
_MAX_NUMBER_DIGITS = 400
_RANK = {"none": 0, "flag": 1, "override": 2, "review": 3}
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}
_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<string>'[^']*'|\"[^\"]*\")"
    r"|(?P<quoted>`[^`]+`)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)|\[|\]|,))"
)


class AssertionRuleError(InvalidArgumentError):
    """A rule that cannot be parsed or applied; the message names the rule and the field."""


@dataclass(frozen=True)
class Assertion:
    """One parsed rule. ``condition`` is the expression tree (tuples); ``source`` is what the
    user wrote, kept for ``to_dict``.

    >>> rule = Assertion.from_dict({"name": "minor", "when": "age < 18", "action": "flag"})
    >>> rule.condition, rule.fields()
    (('cmp', '<', ('field', 'age'), ('const', 18)), ['age'])
    """

    name: str
    condition: tuple
    action: str
    value: Any = None
    source: Any = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assertion:
        """Parse a rule's dict (``name``, ``when``, ``action``, ``value`` to override).

        >>> Assertion.from_dict({"name": "r", "when": "x in [1, 2]", "action": "flag"}).condition
        ('in', ('field', 'x'), ('const', (1, 2)))
        """
        if not isinstance(data, dict):
            raise AssertionRuleError(f"a rule must be a dict, got {type(data).__name__}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise AssertionRuleError(f"a rule needs a non-empty 'name', got {name!r}")
        unknown = sorted(set(data) - {"name", "when", "action", "value", "description"})
        if unknown:
            raise AssertionRuleError(f"rule {name!r}: unknown keys {unknown}")
        action = data.get("action")
        if action not in ACTIONS:
            raise AssertionRuleError(
                f"rule {name!r}: action must be one of {list(ACTIONS)}, got {action!r}"
            )
        if action == "override" and "value" not in data:
            raise AssertionRuleError(f"rule {name!r}: action 'override' needs a 'value'")
        when = data.get("when")
        if isinstance(when, str):
            condition = _Parser(name, when).parse()
        elif isinstance(when, dict):
            condition = _from_structure(name, when)
        else:
            raise AssertionRuleError(
                f"rule {name!r}: 'when' must be an expression or a dict, got {when!r}"
            )
        return cls(name, condition, action, data.get("value"), when)

    def to_dict(self) -> dict[str, Any]:
        """The rule as it was written (``from_dict`` of it gives an equal rule).

        >>> rule = {"name": "r", "when": "x > 1", "action": "override", "value": 0}
        >>> Assertion.from_dict(rule).to_dict() == rule
        True
        """
        data = {"name": self.name, "when": self.source, "action": self.action}
        if self.action == "override":
            data["value"] = self.value
        return data

    def fields(self) -> list[str]:
        """The fields the condition reads, in order of first use.

        >>> Assertion.from_dict({"name": "r", "when": "b > a + b", "action": "flag"}).fields()
        ['b', 'a']
        """
        found: list[str] = []

        def walk(node):
            if node[0] == "field":
                if node[1] not in found:
                    found.append(node[1])
            elif node[0] != "const":
                for child in node[2:] if node[0] in ("cmp", "arith") else node[1:]:
                    if isinstance(child, tuple):
                        walk(child)

        walk(self.condition)
        return found


class _Parser:
    def __init__(self, rule: str, text: str) -> None:
        self.rule, self.text = rule, text
        self.tokens: list[tuple[str, Any, int]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                raise self._error(f"unexpected character {text[position:].lstrip()[0]!r}", position)
            kind = match.lastgroup
            raw = match.group(kind)
            start = match.start(kind)
            if kind == "number":
                if len(raw) > _MAX_NUMBER_DIGITS:
                    # int() of thousands of digits is refused by Python itself (and slow).
                    raise self._error(
                        f"a number has at most {_MAX_NUMBER_DIGITS} characters", start
                    )
                value = float(raw) if any(c in raw for c in ".eE") else int(raw)
                self.tokens.append(("const", value, start))
            elif kind == "string":
                self.tokens.append(("const", raw[1:-1], start))
            elif kind == "quoted":
                self.tokens.append(("name", raw[1:-1], start))
            elif kind == "name" and raw in _KEYWORDS:
                self.tokens.append(("keyword", raw, start))
            else:
                self.tokens.append((kind, raw, start))
            position = match.end()
        self.index = 0

    def _error(self, message: str, position: int | None = None) -> AssertionRuleError:
        if position is None:
            position = (
                self.tokens[self.index][2] if self.index < len(self.tokens) else len(self.text)
            )
        return AssertionRuleError(
            f"rule {self.rule!r}: {message} at position {position} of {excerpt(self.text, 200)}"
        )

    def _peek(self) -> tuple[str, Any, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _accept(self, kind: str, value: Any = None) -> bool:
        token = self._peek()
        if token and token[0] == kind and (value is None or token[1] == value):
            self.index += 1
            return True
        return False

    def _expect(self, kind: str, value: Any) -> None:
        if not self._accept(kind, value):
            found = self._peek()
            raise self._error(f"expected {value!r}, found {found[1] if found else 'the end'!r}")

    def parse(self) -> tuple:
        if not self.tokens:
            raise self._error("empty condition", 0)
        node = self._or()
        token = self._peek()
        if token is not None:
            error = self._error(f"unexpected {token[1]!r}")
            before = self.tokens[self.index - 1]
            if token[0] == "name" and before[0] == "name":
                # Two names in a row: most often one field whose name has a space.
                error = AssertionRuleError(
                    f"{error}; write a field with spaces in backticks, as `{before[1]} {token[1]}`"
                )
            raise error
        return node

    def _or(self):
        node = self._and()
        while self._accept("keyword", "or"):
            node = ("or", node, self._and())
        return node

    def _and(self):
        node = self._not()
        while self._accept("keyword", "and"):
            node = ("and", node, self._not())
        return node

    def _not(self):
        if self._accept("keyword", "not"):
            return ("not", self._not())
        return self._comparison()

    def _comparison(self):
        left = self._sum()
        token = self._peek()
        if token and token[0] == "keyword" and token[1] in ("in", "not"):
            negate = self._accept("keyword", "not")
            self._expect("keyword", "in")
            node = ("in", left, self._list())
            return ("not", node) if negate else node
        parts = []
        while (token := self._peek()) and token[0] == "op" and token[1] in _COMPARISONS:
            self.index += 1
            right = self._sum()
            _check_comparable(self, left, right, token)
            parts.append(("cmp", token[1], left, right))
            left = right
        if not parts:
            return left
        node = parts[0]
        for part in parts[1:]:
            node = ("and", node, part)
        return node

    def _list(self):
        self._expect("op", "[")
        values = []
        while True:
            negative = self._accept("op", "-")
            token = self._peek()
            if (
                token is None
                or token[0] not in ("const", "keyword")
                or (token[0] == "keyword" and token[1] not in ("true", "false"))
            ):
                raise self._error("a list holds numbers, strings, true or false")
            self.index += 1
            value = token[1] if token[0] == "const" else token[1] == "true"
            values.append(-value if negative else value)
            if self._accept("op", "]"):
                return ("const", tuple(values))
            self._expect("op", ",")

    def _sum(self):
        node = self._term()
        while (token := self._peek()) and token[0] == "op" and token[1] in "+-":
            self.index += 1
            node = ("arith", token[1], node, self._term())
        return node

    def _term(self):
        node = self._unary()
        while (token := self._peek()) and token[0] == "op" and token[1] in "*/":
            self.index += 1
            node = ("arith", token[1], node, self._unary())
        return node

    def _unary(self):
        if self._accept("op", "-"):
            return ("arith", "-", ("const", 0), self._unary())
        return self._atom()

    def _atom(self):
        token = self._peek()
        if token is None:
            raise self._error("unexpected end")
        kind, value, _ = token
        if kind == "op" and value == "(":
            self.index += 1
            node = self._or()
            self._expect("op", ")")
            return node
        self.index += 1
        if kind == "const":
            return ("const", value)
        if kind == "keyword" and value in ("true", "false"):
            return ("const", value == "true")
        if kind in ("name",):
            return ("field", value)
        self.index -= 1
        raise self._error(f"unexpected {value!r}")


def _check_comparable(parser: _Parser, left: tuple, right: tuple, token: tuple) -> None:
    """Refuse a comparison of a quoted text with a number, both written in the rule: it can
    never hold, and it is most often a field name written in quotes, not backticks."""
    if left[0] != "const" or right[0] != "const":
        return
    texts = [side[1] for side in (left, right) if isinstance(side[1], str)]
    numbers = [side for side in (left, right) if not isinstance(side[1], str | bool)]
    if len(texts) == 1 and len(numbers) == 1:
        raise parser._error(
            f"compares the text {texts[0]!r} with a number (a field is written as is, or in "
            "backticks when its name has spaces)",
            token[2],
        )


def _from_structure(rule: str, node: dict) -> tuple:
    if not isinstance(node, dict) or len(node) == 0:
        raise AssertionRuleError(f"rule {rule!r}: a condition must be a non-empty dict")
    if set(node) in ({"all"}, {"any"}):
        key = next(iter(node))
        items = node[key]
        if not isinstance(items, list) or not items:
            raise AssertionRuleError(f"rule {rule!r}: {key!r} needs a non-empty list")
        parts = [_from_structure(rule, item) for item in items]
        tree = parts[0]
        for part in parts[1:]:
            tree = ("and" if key == "all" else "or", tree, part)
        return tree
    if set(node) == {"not"}:
        return ("not", _from_structure(rule, node["not"]))
    if set(node) != {"field", "op", "value"}:
        raise AssertionRuleError(
            f"rule {rule!r}: a condition is {{field, op, value}}, all, any or not; "
            f"got keys {sorted(node)}"
        )
    name, op, value = node["field"], node["op"], node["value"]
    if not isinstance(name, str) or not name:
        raise AssertionRuleError(f"rule {rule!r}: 'field' must be a column name, got {name!r}")
    target = ("field", name)
    if op in _COMPARISONS:
        return ("cmp", op, target, ("const", value))
    if op in ("in", "not in"):
        if not isinstance(value, list):
            raise AssertionRuleError(f"rule {rule!r}: field {name!r}: {op!r} needs a list")
        tree = ("in", target, ("const", tuple(value)))
        return ("not", tree) if op == "not in" else tree
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise AssertionRuleError(f"rule {rule!r}: field {name!r}: 'between' needs [low, high]")
        low, high = value
        return (
            "and",
            ("cmp", ">=", target, ("const", low)),
            ("cmp", "<=", target, ("const", high)),
        )
    raise AssertionRuleError(
        f"rule {rule!r}: field {name!r}: op must be one of "
        f"{[*_COMPARISONS, 'in', 'not in', 'between']}, got {op!r}"
    )


_CMP = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def _evaluate(rule: Assertion, node: tuple, columns: dict[str, np.ndarray], n: int):
    kind = node[0]
    if kind == "const":
        return node[1]
    if kind == "field":
        return columns[node[1]]
    if kind in ("and", "or"):
        left = _truth(rule, node[1], columns, n)
        right = _truth(rule, node[2], columns, n)
        return (left & right) if kind == "and" else (left | right)
    if kind == "not":
        return ~_truth(rule, node[1], columns, n)
    if kind == "in":
        values = _evaluate(rule, node[1], columns, n)
        return np.isin(np.broadcast_to(values, (n,)), list(node[2][1]))
    left = _evaluate(rule, node[2], columns, n)
    right = _evaluate(rule, node[3], columns, n)
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            if kind == "cmp":
                return _compare(_CMP[node[1]], left, right, n)
            return _ARITH[node[1]](left, right)
    except TypeError:
        names = [part[1] for part in (node[2], node[3]) if part[0] == "field"]
        what = f"field {names[0]!r}" if names else "the expression"
        raise AssertionRuleError(
            f"rule {rule.name!r}: {what} cannot be compared with {node[1]!r} as written "
            "(text against a number?)"
        ) from None


def _compare(op, left, right, n: int) -> np.ndarray:
    """``op`` on the rows where neither side is missing; false where one is."""
    sides = []
    for value in (left, right):
        if not isinstance(value, np.ndarray):
            value = np.asarray(value, dtype=object if isinstance(value, str) else None)
        sides.append(np.broadcast_to(value, (n,)))
    keep = ~(np.broadcast_to(_missing(sides[0]), (n,)) | np.broadcast_to(_missing(sides[1]), (n,)))
    result = np.zeros(n, dtype=bool)
    if keep.all():
        result[:] = op(sides[0], sides[1])
    else:
        result[keep] = op(sides[0][keep], sides[1][keep])
    return result


def _missing(values) -> np.ndarray | np.bool_:
    if isinstance(values, np.ndarray):
        if values.dtype == object:
            return pd.isna(values)
        if values.dtype.kind in "fc":
            return np.isnan(values)
        return np.False_
    return np.bool_(values is None or (isinstance(values, float) and values != values))


def _truth(rule: Assertion, node: tuple, columns, n: int) -> np.ndarray:
    value = _evaluate(rule, node, columns, n)
    array = np.broadcast_to(np.asarray(value), (n,))
    if array.dtype != bool:
        raise AssertionRuleError(
            f"rule {rule.name!r}: 'and', 'or' and 'not' join conditions, not values "
            f"(a field {rule.fields()} compared with nothing?)"
        )
    return array


@dataclass(frozen=True)
class AssertionResult:
    """Per-row outcome of the rules.

    ``actions``: the highest-ranked action per row (``none``, ``flag``, ``override``,
    ``review``); ``predictions``: the answers after overrides; ``fired``: a rows × rules
    frame of booleans; ``counts``: firings per rule.
    """

    actions: np.ndarray
    predictions: np.ndarray
    fired: pd.DataFrame
    counts: dict[str, int]

    def to_frame(self) -> pd.DataFrame:
        """One row per input row: action, prediction, and the names of the rules that fired.

        >>> r = apply_assertions([{"name": "r", "when": "x > 1", "action": "flag"}],
        ...                      pd.DataFrame({"x": [0, 2]}), [1, 1])
        >>> r.to_frame()["rules"].tolist()
        [[], ['r']]
        """
        names = np.array(self.fired.columns, dtype=object)
        rules = [names[row].tolist() for row in self.fired.to_numpy(dtype=bool)]
        return pd.DataFrame(
            {"action": self.actions, "prediction": self.predictions, "rules": rules}
        )

    def to_dict(self) -> dict[str, Any]:
        """Counts per rule and per action, JSON-ready.

        >>> r = apply_assertions([{"name": "r", "when": "x > 1", "action": "review"}],
        ...                      pd.DataFrame({"x": [0, 2, 3]}), [1, 1, 1])
        >>> r.to_dict()
        {'rules': {'r': 2}, 'actions': {'none': 1, 'review': 2}, 'rows': 3}
        """
        actions, counts = np.unique(self.actions, return_counts=True)
        return {
            "rules": dict(self.counts),
            "actions": {str(a): int(c) for a, c in zip(actions, counts, strict=True)},
            "rows": int(self.actions.size),
        }


def _column(series: pd.Series) -> np.ndarray:
    """A column as numpy: numbers as floats with NaN for missing, the rest as objects."""
    if pd.api.types.is_bool_dtype(series.dtype) and not series.hasnans:
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return series.to_numpy(dtype=object)


def parse_assertions(rules: Any) -> list[Assertion]:
    """Parse rule dicts (or pass parsed rules through); names must be unique.

    >>> [r.action for r in parse_assertions([{"name": "a", "when": "x > 1", "action": "flag"}])]
    ['flag']
    """
    parsed = [r if isinstance(r, Assertion) else Assertion.from_dict(r) for r in rules]
    names = [r.name for r in parsed]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise AssertionRuleError(f"rule names must be unique; repeated: {duplicated}")
    return parsed


def apply_assertions(
    rules: Any, X: pd.DataFrame, predictions: Any, probabilities: Any = None
) -> AssertionResult:
    """Apply rules to every row of ``X`` with the model's ``predictions`` (and
    ``probabilities``, one per row: the positive class's), vectorised per rule.

    >>> X = pd.DataFrame({"age": [30, 45]})
    >>> rule = {"name": "unsure", "when": "0.45 <= probability <= 0.55", "action": "review"}
    >>> apply_assertions([rule], X, [1, 0], probabilities=[0.5, 0.1]).actions.tolist()
    ['review', 'none']
    """
    parsed = parse_assertions(rules)
    if not isinstance(X, pd.DataFrame):
        raise InvalidArgumentError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    n = len(X)
    answers = np.asarray(predictions)
    if answers.shape != (n,):
        raise InvalidArgumentError(
            f"predictions must have one value per row of X ({n}), got shape {answers.shape}"
        )
    columns = {str(name): _column(X[name]) for name in X.columns}
    columns["prediction"] = answers
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=np.float64)
        if p.shape != (n,):
            raise InvalidArgumentError(
                f"probabilities must have one value per row of X ({n}), got shape {p.shape}"
            )
        columns["probability"] = p
    fired = {}
    rank = np.zeros(n, dtype=np.int8)
    final = answers.astype(object)
    overridden = np.zeros(n, dtype=bool)
    for rule in parsed:
        missing = [name for name in rule.fields() if name not in columns]
        if missing:
            available = sorted(columns)
            raise AssertionRuleError(
                f"rule {rule.name!r}: unknown field {missing[0]!r}; fields are {available}"
            )
        hits = _truth(rule, rule.condition, columns, n).copy()
        fired[rule.name] = hits
        rank = np.maximum(rank, np.where(hits, _RANK[rule.action], 0))
        if rule.action == "override":
            first = hits & ~overridden
            final[first] = rule.value
            overridden |= hits
    labels = np.array(["none", "flag", "override", "review"], dtype=object)
    fired_frame = pd.DataFrame(fired, index=X.index, columns=[r.name for r in parsed])
    return AssertionResult(
        actions=labels[rank],
        predictions=final,
        fired=fired_frame,
        counts={name: int(hits.sum()) for name, hits in fired.items()},
    )
