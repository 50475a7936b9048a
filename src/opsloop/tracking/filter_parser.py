"""Parse the run filter language into a small syntax tree (translated to SQL elsewhere).

Grammar (keywords are case-insensitive)::

    expression := term ("OR" term)*
    term       := factor ("AND" factor)*
    factor     := "NOT" factor | "(" expression ")" | comparison
    comparison := field operator value
                | field ["NOT"] "IN" "(" value ("," value)* ")"
                | field "IS" ["NOT"] "NULL"
    field      := ("metrics" | "params" | "tags" | "attributes") "." name | attribute
    operator   := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE"
    value      := number | 'text' | "text" | TRUE | FALSE

A ``name`` is a bare word (letters, digits, ``_ - . / :``) or a backquoted string for keys
with other characters. AND binds tighter than OR, and NOT tighter than both. MLflow's filter
has AND only; this one is a real recursive-descent parser, so any nesting works, and errors
point at the offending position.

A filter is bounded so that no text can exhaust the server: at most 20,000 characters,
nesting (parentheses and NOT) at most 32 deep, at most 200 comparisons and 1,000 values in
all, and integers within 64 bits. Beyond a bound the error names it.

>>> tree = parse_filter("metrics.auc > 0.8 and (params.model = 'rf' or not tags.x = 'y')")
>>> tree.items[0]
Comparison(field=Field(kind='metrics', name='auc'), operator='>', value=0.8)
>>> tree.items[1].items[1]
Not(item=Comparison(field=Field(kind='tags', name='x'), operator='=', value='y'))
>>> tree == And((tree.items[0], Or(tree.items[1].items)))
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opsloop.errors import InvalidArgumentError
from opsloop.tracking.limits import INT64_MAX, INT64_MIN

ATTRIBUTES = (
    "run_id",
    "name",
    "status",
    "user",
    "start_time",
    "end_time",
    "git_commit",
    "git_branch",
    "git_dirty",
    "parent_run_id",
)
KINDS = ("metrics", "params", "tags", "attributes")
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE")
MAX_FILTER_LENGTH = 20_000
MAX_FILTER_DEPTH = 32
MAX_FILTER_COMPARISONS = 200
MAX_FILTER_VALUES = 1_000

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<backquoted>`[^`]*`)
  | (?P<operator>==|!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-/:]*)
    """,
    re.VERBOSE,
)


class FilterSyntaxError(InvalidArgumentError):
    """The filter text is not in the language; the message shows where it went wrong."""


@dataclass(frozen=True)
class Field:
    """A searchable field: ``kind`` is metrics/params/tags/attributes, ``name`` the key.

    >>> Field("metrics", "auc")
    Field(kind='metrics', name='auc')
    """

    kind: str
    name: str


@dataclass(frozen=True)
class Comparison:
    """``field operator value``; ``IN`` takes a tuple, ``IS NULL`` has value ``None``.

    >>> Comparison(Field("params", "m"), "IN", ("a", "b")).operator
    'IN'
    """

    field: Field
    operator: str
    value: object


@dataclass(frozen=True)
class And:
    """All of ``items`` hold.

    >>> And((parse_filter("metrics.a > 1"),)).items[0].operator
    '>'
    """

    items: tuple


@dataclass(frozen=True)
class Or:
    """At least one of ``items`` holds.

    >>> len(parse_filter("metrics.a > 1 or metrics.b > 2").items)
    2
    """

    items: tuple


@dataclass(frozen=True)
class Not:
    """``item`` does not hold.

    >>> parse_filter("not metrics.a > 1").item.field.name
    'a'
    """

    item: object


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokens(text: str) -> list[_Token]:
    out = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterSyntaxError(
                f"filter: unexpected character {text[position]!r} at position {position} "
                f"in {text!r}"
            )
        kind = match.lastgroup
        if kind != "space":
            out.append(_Token(kind, match.group(), position))
        position = match.end()
    out.append(_Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0
        self.depth = 0
        self.comparisons = 0
        self.values = 0

    def too_large(self, what: str, limit: int) -> FilterSyntaxError:
        return FilterSyntaxError(
            f"filter: {what} at position {self.token.position}; the limit is {limit}"
        )

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def fail(self, expected: str) -> FilterSyntaxError:
        token = self.token
        found = "the end" if token.kind == "end" else repr(token.text)
        return FilterSyntaxError(
            f"filter: expected {expected} at position {token.position}, found {found} "
            f"in {self.text!r}"
        )

    def keyword(self, *words: str) -> bool:
        token = self.token
        if token.kind == "word" and token.text.upper() in words:
            self.index += 1
            return True
        return False

    def punct(self, symbol: str) -> bool:
        if self.token.kind == "punct" and self.token.text == symbol:
            self.index += 1
            return True
        return False

    def parse(self):
        if self.token.kind == "end":
            raise self.fail("a condition")
        tree = self.expression()
        if self.token.kind != "end":
            raise self.fail("AND, OR or the end")
        return tree

    def expression(self):
        items = [self.term()]
        while self.keyword("OR"):
            items.append(self.term())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def term(self):
        items = [self.factor()]
        while self.keyword("AND"):
            items.append(self.factor())
        return items[0] if len(items) == 1 else And(tuple(items))

    def factor(self):
        token = self.token
        nested = (token.kind == "word" and token.text.upper() == "NOT") or (
            token.kind == "punct" and token.text == "("
        )
        if nested:
            # Each level is a few Python frames here and in the SQL translation: a bound
            # depth keeps both far from the recursion limit.
            if self.depth == MAX_FILTER_DEPTH:
                raise self.too_large("parentheses and NOT nest too deep", MAX_FILTER_DEPTH)
            self.depth += 1
            try:
                if self.keyword("NOT"):
                    return Not(self.factor())
                self.punct("(")
                inner = self.expression()
                if not self.punct(")"):
                    raise self.fail("')'")
                return inner
            finally:
                self.depth -= 1
        if self.comparisons == MAX_FILTER_COMPARISONS:
            raise self.too_large("too many comparisons", MAX_FILTER_COMPARISONS)
        self.comparisons += 1
        return self.comparison()

    def field(self) -> Field:
        token = self.token
        if token.kind != "word":
            raise self.fail("a field such as metrics.auc, params.model or status")
        self.index += 1
        word = token.text.lower()
        if word in ("attribute", "attr", "run"):
            word = "attributes"
        if word in ("metric", "param", "tag"):
            word += "s"
        if word in KINDS and self.punct("."):
            name_token = self.token
            if name_token.kind == "backquoted":
                name = name_token.text[1:-1]
            elif name_token.kind in ("word", "number"):
                name = name_token.text
            else:
                raise self.fail(f"a key name after '{word}.'")
            self.index += 1
            # Dotted keys such as metrics.val.auc are one name.
            while self.punct("."):
                if self.token.kind not in ("word", "number"):
                    raise self.fail("a key name part")
                name += "." + self.token.text
                self.index += 1
            if not name:
                raise FilterSyntaxError(f"filter: empty key name in {self.text!r}")
            field = Field(word, name)
        else:
            field = Field("attributes", token.text)
        if field.kind == "attributes" and field.name not in ATTRIBUTES:
            raise FilterSyntaxError(
                f"filter: unknown attribute {field.name!r} at position {token.position}; "
                f"known: {', '.join(ATTRIBUTES)}, or metrics.<key>, params.<key>, tags.<key>"
            )
        return field

    def value(self):
        if self.values == MAX_FILTER_VALUES:
            raise self.too_large("too many values", MAX_FILTER_VALUES)
        self.values += 1
        token = self.token
        self.index += 1
        if token.kind == "number":
            if not re.fullmatch(r"[-+]?\d+", token.text):
                return float(token.text)
            digits = token.text.lstrip("+-").lstrip("0")
            # Compare lengths first: int() of thousands of digits is slow or refused.
            number = int(token.text) if len(digits) <= 19 else None
            if number is None or not INT64_MIN <= number <= INT64_MAX:
                raise FilterSyntaxError(
                    f"filter: integer {token.text[:30]} at position {token.position} is "
                    f"beyond 64 bits ({INT64_MIN} to {INT64_MAX}); write it as a decimal "
                    "number such as 1e23 to compare with a metric"
                )
            return number
        if token.kind == "string":
            quote = token.text[0]
            body = token.text[1:-1].replace(quote * 2, quote)
            return re.sub(r"\\(.)", r"\1", body)
        if token.kind == "word" and token.text.upper() in ("TRUE", "FALSE"):
            return token.text.upper() == "TRUE"
        self.index -= 1
        raise self.fail("a number, a quoted string, TRUE or FALSE")

    def comparison(self) -> Comparison:
        field = self.field()
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            if not self.keyword("NULL"):
                raise self.fail("NULL")
            return Comparison(field, "IS NOT NULL" if negated else "IS NULL", None)
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            if not self.punct("("):
                raise self.fail("'(' after IN")
            values = [self.value()]
            while self.punct(","):
                values.append(self.value())
            if not self.punct(")"):
                raise self.fail("',' or ')'")
            return Comparison(field, "NOT IN" if negated else "IN", tuple(values))
        if negated:
            raise self.fail("IN after NOT")
        token = self.token
        if token.kind == "operator":
            operator = {"==": "=", "<>": "!="}.get(token.text, token.text)
        elif token.kind == "word" and token.text.upper() in ("LIKE", "ILIKE"):
            operator = token.text.upper()
        else:
            raise self.fail("an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, IS)")
        self.index += 1
        return Comparison(field, operator, self.value())


def parse_filter(text: str):
    """Parse ``text`` into :class:`And` / :class:`Or` / :class:`Not` / :class:`Comparison`.

    >>> parse_filter("status = 'FINISHED'")
    Comparison(field=Field(kind='attributes', name='status'), operator='=', value='FINISHED')
    >>> parse_filter("metrics.auc >")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    FilterSyntaxError: filter: expected a number, ...
    """
    if not isinstance(text, str):
        raise TypeError(f"filter must be a string, got {type(text).__name__}")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterSyntaxError(f"filter: {len(text)} characters; the limit is {MAX_FILTER_LENGTH}")
    return _Parser(text).parse()
