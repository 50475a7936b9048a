"""Where in a stream a change of mean most likely happened: the least-squares estimate of a
single change point (Hinkley, 1970).

ADWIN signals that its window holds two parts with different means, and drops old items
until no split looks significant. At its alarm the kept window often still starts well
before the change (the new part is short yet), so its start is not where the change was.
The estimate here splits the kept window where the two parts differ most: the ``t`` that
maximises

.. math:: \\frac{t (n - t)}{n} (\\bar x_{<t} - \\bar x_{\\ge t})^2,

the drop in the sum of squares when one mean becomes two; for 0/1 errors and for absolute
errors alike. Both parts keep at least ``min_length`` items (ADWIN's ``min_window_length``).

>>> import numpy as np
>>> stream = np.r_[np.zeros(40), np.ones(3), np.zeros(17), np.ones(30)]
>>> mean_shift_point(stream)
60

Reference: David V. Hinkley. Inference about the change-point in a sequence of random
variables. Biometrika 57(1), 1970, pp. 1-17.
"""

from __future__ import annotations

import numpy as np


def mean_shift_point(values: np.ndarray, min_length: int = 5) -> int:
    """The index of the first item after the most likely change of mean in ``values`` (0
    when the stream is too short to hold two parts of ``min_length``).

    >>> mean_shift_point(np.array([1.0, 2.0, 3.0]))
    0
    """
    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 2 * min_length:
        return 0
    sums = np.cumsum(x)
    t = np.arange(min_length, n - min_length + 1)
    left = sums[t - 1] / t
    right = (sums[-1] - sums[t - 1]) / (n - t)
    gain = t * (n - t) / n * (left - right) ** 2
    return int(t[int(np.argmax(gain))])
