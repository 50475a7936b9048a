"""The ten classification functions of Agrawal, Imielinski and Swami (1993), vectorised.

The paper ("Database Mining: A Performance Perspective", IEEE TKDE 5(6), 914-925) defines a
synthetic population of people with nine attributes and ten rules that split it into group A
and group B. :func:`opsloop.datasets.credit` draws the attributes and reads group B as "the
applicant defaults". The rules are written out here on whole numpy arrays because the
generators that ship them (Weka, MOA, River) evaluate one row at a time, and River's copy
differs from the paper in function 5 and returns group A as 1 for functions 1-6 but as 0 for
functions 7-10.

Group A per rule (``s`` salary, ``c`` commission, ``e`` education level 0-4, ``l`` loan,
``t = s + c``; "young" is ``age < 40``, "middle" ``40 <= age < 60``, "old" ``age >= 60``):

==== =========================================================================================
rule group A
==== =========================================================================================
1    young or old
2    young and 50k <= s <= 100k, middle and 75k <= s <= 125k, or old and 25k <= s <= 75k
3    young and e in {0, 1}, middle and e in {1, 2, 3}, or old and e in {2, 3, 4}
4    young: e in {0, 1} ? 25k <= s <= 75k : 50k <= s <= 100k;
     middle: e in {1, 2, 3} ? 50k <= s <= 100k : 75k <= s <= 125k;
     old: e in {2, 3, 4} ? 50k <= s <= 100k : 25k <= s <= 75k
5    young: 50k <= s <= 100k ? 100k <= l <= 300k : 200k <= l <= 400k;
     middle: 75k <= s <= 125k ? 200k <= l <= 400k : 300k <= l <= 500k;
     old: 25k <= s <= 75k ? 300k <= l <= 500k : 100k <= l <= 300k
6    rule 2 with the total income ``t`` in place of ``s``
7    disposable ``2t/3 - l/5 - 20k > 0``
8    disposable ``2t/3 - 5000 e - 20k > 0``
9    disposable ``2t/3 - 5000 e - l/5 - 10k > 0``
10   disposable ``2t/3 - 5000 e + equity/5 - 10k > 0`` with
     ``equity = hvalue * max(hyears - 20, 0) / 10``
==== =========================================================================================

The paper prints the income factor as 0.67; the reference generators use exactly 2/3, and so
does this module.

>>> import numpy as np
>>> agrawal_group_b(
...     1, salary=np.array([50e3, 50e3]), commission=np.array([0.0, 0.0]),
...     age=np.array([30, 45]), elevel=np.array([0, 0]), hvalue=np.array([1e5, 1e5]),
...     hyears=np.array([5, 5]), loan=np.array([0.0, 0.0]),
... )
array([False,  True])
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: The rule numbers accepted wherever a rule is chosen.
RULES: tuple[int, ...] = tuple(range(1, 11))


def _between(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return (low <= x) & (x <= high)


def _by_age(age: np.ndarray, young: np.ndarray, middle: np.ndarray, old: np.ndarray):
    return np.where(age < 40, young, np.where(age < 60, middle, old))


def _rule_1(s, c, age, e, hv, hy, loan):
    return (age < 40) | (age >= 60)


def _salary_bands(x, age):
    return _by_age(age, _between(x, 50e3, 100e3), _between(x, 75e3, 125e3), _between(x, 25e3, 75e3))


def _rule_2(s, c, age, e, hv, hy, loan):
    return _salary_bands(s, age)


def _rule_3(s, c, age, e, hv, hy, loan):
    return _by_age(age, e <= 1, (e >= 1) & (e <= 3), e >= 2)


def _rule_4(s, c, age, e, hv, hy, loan):
    low, mid, high = _between(s, 25e3, 75e3), _between(s, 50e3, 100e3), _between(s, 75e3, 125e3)
    young = np.where(e <= 1, low, mid)
    middle = np.where((e >= 1) & (e <= 3), mid, high)
    old = np.where(e >= 2, mid, low)
    return _by_age(age, young, middle, old)


def _rule_5(s, c, age, e, hv, hy, loan):
    young = np.where(
        _between(s, 50e3, 100e3), _between(loan, 100e3, 300e3), _between(loan, 200e3, 400e3)
    )
    middle = np.where(
        _between(s, 75e3, 125e3), _between(loan, 200e3, 400e3), _between(loan, 300e3, 500e3)
    )
    old = np.where(
        _between(s, 25e3, 75e3), _between(loan, 300e3, 500e3), _between(loan, 100e3, 300e3)
    )
    return _by_age(age, young, middle, old)


def _rule_6(s, c, age, e, hv, hy, loan):
    return _salary_bands(s + c, age)


def _rule_7(s, c, age, e, hv, hy, loan):
    return 2.0 * (s + c) / 3.0 - loan / 5.0 - 20e3 > 0


def _rule_8(s, c, age, e, hv, hy, loan):
    return 2.0 * (s + c) / 3.0 - 5000.0 * e - 20e3 > 0


def _rule_9(s, c, age, e, hv, hy, loan):
    return 2.0 * (s + c) / 3.0 - 5000.0 * e - loan / 5.0 - 10e3 > 0


def _rule_10(s, c, age, e, hv, hy, loan):
    equity = hv * np.maximum(hy - 20.0, 0.0) / 10.0
    return 2.0 * (s + c) / 3.0 - 5000.0 * e + equity / 5.0 - 10e3 > 0


_GROUP_A: dict[int, Callable[..., np.ndarray]] = {
    1: _rule_1,
    2: _rule_2,
    3: _rule_3,
    4: _rule_4,
    5: _rule_5,
    6: _rule_6,
    7: _rule_7,
    8: _rule_8,
    9: _rule_9,
    10: _rule_10,
}


def check_rule(rule: object, name: str = "rule") -> int:
    """Return ``rule`` if it is one of the ten rule numbers, else raise naming ``name``.

    >>> check_rule(9)
    9
    """
    if isinstance(rule, bool) or not isinstance(rule, int | np.integer) or int(rule) not in RULES:
        raise ValueError(f"{name} must be an Agrawal rule number from 1 to 10, got {rule!r}")
    return int(rule)


def agrawal_group_b(
    rule: int,
    *,
    salary: np.ndarray,
    commission: np.ndarray,
    age: np.ndarray,
    elevel: np.ndarray,
    hvalue: np.ndarray,
    hyears: np.ndarray,
    loan: np.ndarray,
) -> np.ndarray:
    """Whether each row falls in group B of Agrawal rule ``rule`` (1-10), as a bool array.

    Arguments are equal-length arrays in the paper's units (money in currency units, ``age``
    and ``hyears`` in years, ``elevel`` 0-4). Group B is the complement of the group A that
    the module table defines.

    >>> import numpy as np
    >>> one = dict(salary=np.array([30e3]), commission=np.array([20e3]), age=np.array([65]),
    ...            elevel=np.array([4]), hvalue=np.array([4e5]), hyears=np.array([25]),
    ...            loan=np.array([1e5]))
    >>> [bool(agrawal_group_b(r, **one)[0]) for r in (6, 8, 10)]
    [False, True, False]
    """
    rule = check_rule(rule)
    arrays = [
        np.asarray(a, dtype=float) for a in (salary, commission, age, elevel, hvalue, hyears, loan)
    ]
    return ~_GROUP_A[rule](*arrays)
