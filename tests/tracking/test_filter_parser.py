"""The filter language's parser: precedence, every form of comparison, and its errors."""

from __future__ import annotations

import pytest

from opsloop.tracking.filter_parser import (
    And,
    Comparison,
    Field,
    FilterSyntaxError,
    Not,
    Or,
    parse_filter,
)


def m(name, op, value):
    return Comparison(Field("metrics", name), op, value)


def p(name, op, value):
    return Comparison(Field("params", name), op, value)


def test_and_binds_tighter_than_or_and_not_tighter_than_and():
    tree = parse_filter("metrics.a > 1 OR metrics.b < 2 AND NOT params.c = 'x'")
    assert tree == Or((m("a", ">", 1), And((m("b", "<", 2), Not(p("c", "=", "x"))))))


def test_parentheses_override_precedence():
    tree = parse_filter("(metrics.a > 1 or metrics.b < 2) and params.c != 'x'")
    assert tree == And((Or((m("a", ">", 1), m("b", "<", 2))), p("c", "!=", "x")))


def test_keywords_are_case_insensitive_and_operators_have_synonyms():
    assert parse_filter("metric.a == 1e-3 aNd param.b <> 'y'") == And(
        (m("a", "=", 0.001), p("b", "!=", "y"))
    )


def test_numbers_keep_int_or_float():
    assert parse_filter("metrics.a >= -2").value == -2
    assert parse_filter("metrics.a >= .5").value == 0.5
    assert isinstance(parse_filter("metrics.a >= 2.0").value, float)


def test_in_not_in_is_null_like():
    assert parse_filter("params.m IN ('rf', 'gbm')") == p("m", "IN", ("rf", "gbm"))
    assert parse_filter("params.m not in ('rf')") == p("m", "NOT IN", ("rf",))
    assert parse_filter("metrics.a IS NULL") == m("a", "IS NULL", None)
    assert parse_filter("metrics.a is not null") == m("a", "IS NOT NULL", None)
    assert parse_filter("tags.t ILIKE '%x%'") == Comparison(Field("tags", "t"), "ILIKE", "%x%")


def test_strings_with_quotes_and_keys_with_odd_characters():
    assert parse_filter("params.q = 'it''s'").value == "it's"
    assert parse_filter('params.q = "say \\"hi\\""').value == 'say "hi"'
    assert parse_filter("metrics.`val auc (5)` > 0").field == Field("metrics", "val auc (5)")
    assert parse_filter("metrics.val.auc > 0").field == Field("metrics", "val.auc")
    assert parse_filter("metrics.train/loss < 1").field == Field("metrics", "train/loss")


def test_attributes_with_and_without_prefix():
    assert parse_filter("status = 'FAILED'").field == Field("attributes", "status")
    assert parse_filter("attributes.start_time > 5").field == Field("attributes", "start_time")
    assert parse_filter("git_dirty = false").value is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a condition at position 0, found the end"),
        ("metrics.auc >", "expected a number, a quoted string, TRUE or FALSE at position 13"),
        ("metrics.auc > 0.8 and", "expected a field such as metrics.auc"),
        ("(metrics.auc > 0.8", "expected ')' at position 18"),
        ("metrics.auc > 0.8 params.x = 'a'", "expected AND, OR or the end at position 18"),
        ("colour = 'red'", "unknown attribute 'colour' at position 0"),
        ("metrics.auc ~ 1", "unexpected character '~' at position 12"),
        ("params.m NOT = 'a'", "expected IN after NOT"),
        ("metrics.a > 'x' or", "expected a field"),
    ],
)
def test_errors_name_the_position_and_what_was_expected(text, message):
    with pytest.raises(FilterSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_filter(text)


def test_a_filter_must_be_text():
    with pytest.raises(TypeError, match="filter must be a string, got int"):
        parse_filter(3)
