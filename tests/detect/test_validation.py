"""Stream values and parameters are checked with messages naming the owner and the rule."""

from __future__ import annotations

import numpy as np
import pytest

from opsloop.detect.validation import (
    check_value,
    check_values,
    first_violation,
    flag,
    one_of,
    positive_int,
    real_in,
)


def test_rules():
    values = np.array([0.0, 1.0, 0.25, -1.0, 3.0])
    assert first_violation(values, "binary") == 2
    assert first_violation(values, "unit") == 3
    assert first_violation(values, "real") is None
    assert first_violation(np.array([0.0, np.inf]), "real") == 1


def test_check_values_converts_and_refuses():
    assert check_values("X", np.array([1, 0], dtype=np.int8), "binary").dtype == np.float64
    assert check_values("X", [], "binary").size == 0
    with pytest.raises(ValueError, match=r"X: xs must hold booleans, integers or floats"):
        check_values("X", np.array(["a"]), "real")
    with pytest.raises(ValueError, match=r"X: xs\[0\] = nan breaks the rule"):
        check_values("X", [np.nan], "real")


def test_check_value():
    assert check_value("X", np.float32(0.5), "unit") == 0.5
    assert check_value("X", np.array(1), "binary") == 1.0
    with pytest.raises(ValueError, match="X: x must be a real number, got str"):
        check_value("X", "1", "real")
    with pytest.raises(ValueError, match=r"X: x = -0.5 breaks the rule 'values lie in \[0, 1\]'"):
        check_value("X", -0.5, "unit")


def test_parameters():
    assert positive_int("X", "n", 3, minimum=3) == 3
    with pytest.raises(ValueError, match="X: n must be an integer >= 1, got True"):
        positive_int("X", "n", True)
    assert real_in("X", "a", 1, low=0.0, high=1.0) == 1.0
    with pytest.raises(ValueError, match=r"X: a must be a finite number in \(0.0, 1.0\]"):
        real_in("X", "a", 0.0, low=0.0, high=1.0, low_open=True)
    with pytest.raises(ValueError, match="X: mode must be one of"):
        one_of("X", "mode", "x", ("a", "b"))
    with pytest.raises(ValueError, match="X: two_sided must be True or False, got 1"):
        flag("X", "two_sided", 1)
