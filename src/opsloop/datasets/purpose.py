"""The free-text ``purpose`` of a loan application, built from templates.

Every sentence is ``opening + core + ending``: an opening ("", "I want to ", ...), a core
naming what the money is for ("buy a used car") and an ending ("for work"). All combinations
are built once at import into :data:`PHRASES` (about 1,600 distinct sentences), so a
million rows cost one integer draw and one array lookup, never a string format per row.

Each sentence belongs to one topic. The topic depends on the loan amount, as it would in real
applications (house purchases are large loans, medical bills small ones):

================ ============== ================= ===============
topic            loan < 50,000  50,000 - 249,999  >= 250,000
================ ============== ================= ===============
debt             0.25           0.20              0.15
car              0.20           0.15              0.05
home improvement 0.10           0.20              0.15
home purchase    0.00           0.10              0.40
education        0.10           0.10              0.05
medical          0.15           0.05              0.02
business         0.05           0.10              0.15
family           0.15           0.10              0.03
================ ============== ================= ===============

Within a topic every sentence is equally likely.

>>> import numpy as np
>>> len(PHRASES), len(set(PHRASES)), np.bincount(PHRASE_TOPIC).tolist()
(1632, 1632, [192, 240, 192, 192, 240, 192, 192, 192])
>>> PHRASES[0]
'consolidate credit card debt'
"""

from __future__ import annotations

import numpy as np

_OPENINGS = ("", "I want to ", "need to ", "loan to ", "looking to ", "would like to ")

# topic -> (cores, endings)
_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "debt": (
        (
            "consolidate credit card debt",
            "pay off my credit cards",
            "consolidate two personal loans",
            "clear an overdraft",
            "pay off store card balances",
            "refinance an expensive loan",
            "merge my debts into one payment",
            "pay off a payday loan",
        ),
        ("", " at a lower rate", " and cut my monthly payments", " before rates go up"),
    ),
    "car": (
        (
            "buy a used car",
            "buy a new car",
            "replace my old car",
            "buy a second-hand van",
            "buy an electric car",
            "pay for car repairs",
            "buy a motorbike",
            "finance a family car",
        ),
        ("", " for work", " to commute", " for the family", " after my car broke down"),
    ),
    "home improvement": (
        (
            "renovate the kitchen",
            "redo the bathroom",
            "replace the roof",
            "install solar panels",
            "build an extension",
            "replace old windows",
            "insulate the attic",
            "fix the heating system",
        ),
        ("", " before winter", " before selling the house", " after storm damage"),
    ),
    "home purchase": (
        (
            "put a deposit on a house",
            "buy a flat",
            "buy a first home",
            "buy a plot of land",
            "top up a mortgage deposit",
            "buy out my partner's share of the house",
            "buy a holiday cottage",
            "move to a bigger house",
        ),
        ("", " near my work", " in my home town", " for a growing family"),
    ),
    "education": (
        (
            "pay university tuition",
            "pay for a master's degree",
            "fund a coding bootcamp",
            "pay for a professional certification",
            "cover school fees",
            "pay for a pilot licence",
            "study abroad for a year",
            "retrain as a nurse",
        ),
        ("", " starting in september", " to change careers", " for my daughter", " for my son"),
    ),
    "medical": (
        (
            "pay for dental work",
            "cover surgery costs",
            "pay hospital bills",
            "pay for fertility treatment",
            "buy hearing aids",
            "pay for eye surgery",
            "cover physiotherapy",
            "pay for a hip operation",
        ),
        ("", " not covered by insurance", " for my father", " for my mother"),
    ),
    "business": (
        (
            "start a small business",
            "buy equipment for my workshop",
            "open a coffee shop",
            "expand my bakery",
            "buy stock for my online shop",
            "buy a delivery van for the business",
            "fit out a new office",
            "cover cash flow for my company",
        ),
        ("", " this year", " after winning a big contract", " to hire two people"),
    ),
    "family": (
        (
            "pay for our wedding",
            "cover moving costs",
            "pay for a family holiday",
            "cover funeral costs",
            "buy things for a new baby",
            "buy furniture for a new flat",
            "pay for a honeymoon",
            "help my parents with bills",
        ),
        ("", " next spring", " this summer", " without touching savings"),
    ),
}

#: Topic names, in the row order of :data:`TOPIC_WEIGHTS` columns.
TOPICS: tuple[str, ...] = tuple(_TOPICS)
#: Loan amounts at which the topic mix changes (see the module table).
LOAN_EDGES: np.ndarray = np.array([50_000.0, 250_000.0])
#: Rows: loan bands below, between and above ``LOAN_EDGES``; columns follow ``TOPICS``.
TOPIC_WEIGHTS: np.ndarray = np.array(
    [
        [0.25, 0.20, 0.10, 0.00, 0.10, 0.15, 0.05, 0.15],
        [0.20, 0.15, 0.20, 0.10, 0.10, 0.05, 0.10, 0.10],
        [0.15, 0.05, 0.15, 0.40, 0.05, 0.02, 0.15, 0.03],
    ]
)


def _build() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    phrases: list[str] = []
    topic_of: list[int] = []
    offsets, counts = [], []
    for t, (cores, endings) in enumerate(_TOPICS.values()):
        offsets.append(len(phrases))
        for core in cores:
            for opening in _OPENINGS:
                for ending in endings:
                    phrases.append(opening + core + ending)
                    topic_of.append(t)
        counts.append(len(phrases) - offsets[-1])
    return (
        np.array(phrases, dtype=object),
        np.array(topic_of),
        np.array(offsets),
        np.array(counts),
    )


#: Every sentence ``purpose`` can take, grouped by topic.
PHRASES, PHRASE_TOPIC, _OFFSETS, _COUNTS = _build()


def purpose_codes(loan: np.ndarray, u_topic: np.ndarray, u_phrase: np.ndarray) -> np.ndarray:
    """Indices into :data:`PHRASES` for loans ``loan``, from two uniform [0, 1) draws per row.

    >>> import numpy as np
    >>> code = purpose_codes(np.array([400_000.0]), np.array([0.5]), np.array([0.0]))
    >>> TOPICS[PHRASE_TOPIC[code[0]]]
    'home purchase'
    """
    band = np.searchsorted(LOAN_EDGES, loan, side="right")
    cumulative = np.cumsum(TOPIC_WEIGHTS, axis=1)
    cumulative[:, -1] = 1.0  # guard against rounding leaving u just above the last edge
    topic = (u_topic[:, None] >= cumulative[band]).sum(axis=1)
    return _OFFSETS[topic] + (u_phrase * _COUNTS[topic]).astype(np.int64)
