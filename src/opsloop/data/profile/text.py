"""Statistics of a categorical or free-text column: value counts and text lengths.

Both logical types ``category`` and ``string`` get the same :class:`TextSummary`, because
:func:`~opsloop.data.types.infer_column_type` tells them apart by cardinality: a column may be
categorical in one chunk and free text in another, and the merged profile must still hold
everything either type reports. The summary keeps the value
:class:`~opsloop.data.profile.frequencies.Frequencies` and the distributions of each value's
length in characters (Unicode code points, Python's ``len``) and in words (maximal runs of
non-whitespace, Python's ``len(s.split())``).

Values are factorised once (vectorised), lengths are measured once per distinct value with
Arrow string kernels and spread back to rows by index, so a low-cardinality column costs
little more than its factorisation.

>>> import pandas as pd
>>> s = TextSummary.of_values(pd.Series(["a b", "cde", "a b"]))
>>> s.characters.mean, s.words.maximum, s.frequencies.top(1)[0].count
(3.0, 2, 2)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from opsloop.data.profile.frequencies import (
    DEFAULT_DISTINCT_LG_K,
    DEFAULT_FREQUENT_LG_SIZE,
    DEFAULT_MAX_EXACT_VALUES,
    Frequencies,
)
from opsloop.data.profile.numeric import DEFAULT_QUANTILE_K, NumericSummary


@dataclass(frozen=True, eq=False)
class TextSummary:
    """Value frequencies and length distributions of a text or categorical column.

    ``categorical_dtype`` records whether the column was stored as a pandas ``category``,
    which makes its logical type ``category`` whatever its cardinality.

    >>> import pandas as pd
    >>> TextSummary.of_values(pd.Series(["x", "y"], dtype="category")).categorical_dtype
    True
    """

    frequencies: Frequencies
    characters: NumericSummary
    words: NumericSummary
    categorical_dtype: bool = False

    @classmethod
    def of_values(
        cls,
        values: pd.Series,
        quantile_k: int = DEFAULT_QUANTILE_K,
        max_exact_values: int = DEFAULT_MAX_EXACT_VALUES,
        frequent_lg_size: int = DEFAULT_FREQUENT_LG_SIZE,
        distinct_lg_k: int = DEFAULT_DISTINCT_LG_K,
    ) -> TextSummary:
        """Summarise the non-null ``values`` of a column (non-strings are keyed by ``str``).

        >>> import pandas as pd
        >>> TextSummary.of_values(pd.Series(["  two  words ", ""])).words.quantiles([0, 1])
        [0.0, 2.0]
        """
        categorical = isinstance(values.dtype, pd.CategoricalDtype)
        if categorical:
            codes = values.cat.codes.to_numpy().astype(np.intp)
            counts = np.bincount(codes, minlength=len(values.cat.categories))
            used = counts > 0
            # Unused categories are not values of the data.
            codes = (np.cumsum(used) - 1)[codes]
            counts = counts[used]
            uniques = values.cat.categories[used].astype(str)
        else:
            # Arrow strings even for object columns: pandas 2's object factorize merges
            # strings that differ only after a NUL character.
            strings = (
                values if _is_arrow_strings(values.dtype) else values.astype("string[pyarrow]")
            )
            codes, uniques = pd.factorize(strings)
            counts = np.bincount(codes, minlength=len(uniques))
        arrow = _to_arrow(uniques)
        characters = pc.utf8_length(arrow).to_numpy(zero_copy_only=False)
        trimmed = pc.utf8_trim_whitespace(arrow)
        pieces = pc.list_value_length(pc.utf8_split_whitespace(trimmed))
        # Splitting an all-blank string yields one empty piece, which is no word.
        blank = pc.equal(pc.utf8_length(trimmed), 0)
        words = pc.if_else(blank, 0, pieces).to_numpy(zero_copy_only=False)
        frequencies = Frequencies.of_counts(
            arrow.to_pylist() if len(uniques) > 0 else [],
            counts,
            max_exact_values,
            frequent_lg_size,
            distinct_lg_k,
        )
        return cls(
            frequencies=frequencies,
            characters=NumericSummary.of_values(characters.astype(np.int64)[codes], quantile_k),
            words=NumericSummary.of_values(words.astype(np.int64)[codes], quantile_k),
            categorical_dtype=categorical,
        )

    def merge(self, other: TextSummary) -> TextSummary:
        """Statistics of both inputs' values together.

        >>> import pandas as pd
        >>> a = TextSummary.of_values(pd.Series(["ab"]))
        >>> a.merge(TextSummary.of_values(pd.Series(["abcd"]))).characters.mean
        3.0
        """
        return TextSummary(
            frequencies=self.frequencies.merge(other.frequencies),
            characters=self.characters.merge(other.characters),
            words=self.words.merge(other.words),
            categorical_dtype=self.categorical_dtype and other.categorical_dtype,
        )

    def to_state(self) -> dict:
        """A lossless JSON-safe dictionary (see :meth:`from_state`)."""
        return {
            "frequencies": self.frequencies.to_state(),
            "characters": self.characters.to_state(),
            "words": self.words.to_state(),
            "categorical_dtype": self.categorical_dtype,
        }

    @classmethod
    def from_state(cls, state: dict) -> TextSummary:
        """Rebuild from :meth:`to_state`.

        >>> import pandas as pd
        >>> s = TextSummary.of_values(pd.Series(["a", "bb"]))
        >>> TextSummary.from_state(s.to_state()).characters.maximum
        2
        """
        return cls(
            frequencies=Frequencies.from_state(state["frequencies"]),
            characters=NumericSummary.from_state(state["characters"]),
            words=NumericSummary.from_state(state["words"]),
            categorical_dtype=bool(state["categorical_dtype"]),
        )


def _is_arrow_strings(dtype: object) -> bool:
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def _to_arrow(uniques: pd.Index) -> pa.Array:
    if _is_arrow_strings(uniques.dtype):
        array = pa.array(uniques.array)  # shares the Arrow buffers, no copy
    else:
        array = pa.array(uniques.to_numpy(dtype=object), type=pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array
