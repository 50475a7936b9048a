"""The reference's errors made by the model version whose window is judged.

A deployment's reference keeps the predictions of the version that made them
(``predicted_by``, :mod:`.reference`), and a window's decay weighs the reference's errors
to the window's inputs (:mod:`.reweighted_reference`). After a promotion, a rollback or a
new deploy the variant answers with another version: its errors against the errors the
earlier version made on the reference would compare two models, not two relationships
between inputs and labels. So when the version that answered the window's judged rows is
not the reference's, and the reference keeps its inputs and labels, that version predicts
the reference's sample again: loaded through the registry
(:func:`~opsloop.serving.loaded_variant.load_variant`, which checks the artifact against its
sha256 and applies the registry's trust rules), its answers on the sample's inputs are kept
in this process per reference and artifact (the reference's digest and the sha256 of the
version's artifact in the registry's record, so two stores' "m" v1 are never confused) and
per trust asked for (the last :data:`KEPT`), so that each version is loaded and run once,
not once a window, and a call that does not trust a model never gets the answers of one
that did.

When that cannot be done (no registry to load the version with, one the registry refuses
or cannot find, a model that fails on the reference's inputs), the reweighting is not made
and its ``note`` says why: the window's decay then cannot tell from the reference whether
the relationship moved. A reference that does not say which version predicted it is taken
as the prediction of the version that answers (as before versions were kept with it).
Whose predictions the errors are of is in the reweighting's ``predictions``
(``{"model", "version", "predicted_again"}``), and so in the window's evidence.

>>> import pandas as pd
>>> from opsloop.monitoring.reference import set_reference, stored_reference
>>> frame = pd.DataFrame({"x": [float(i % 7) for i in range(40)]})
>>> _ = set_reference(db, "api", frame, predictions=[0] * 40, labels=[0] * 40,
...                   predicted_by=("credit", 1))
>>> judged = window_reference(stored_reference(db, "api"), ("credit", 2), frame, "accuracy")
>>> judged.errors is None, judged.note.split(";")[0]
(True, "the reference's predictions are credit v1's and the window's errors credit v2's")
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pandas as pd

from opsloop.monitoring.reference import StoredReference
from opsloop.monitoring.reweighted_reference import ReweightedReference, reweighted_reference

#: Predictions made again kept in this process, by reference, artifact and trust.
KEPT = 8
_kept: OrderedDict[tuple[Any, ...], list] = OrderedDict()
_kept_lock = threading.Lock()


def _whose(version: tuple[str, int], again: bool) -> dict[str, Any]:
    return {"model": version[0], "version": version[1], "predicted_again": again}


def predicted_again(
    stored: StoredReference,
    model: str,
    version: int,
    registry: Any,
    *,
    trust: bool = False,
    trusted_types: Iterable[str] = (),
) -> list:
    """Version ``version`` of ``model`` (loaded from ``registry``, sha256 checked, with
    the registry's trust rules) on the inputs of ``stored``'s reference sample: one
    prediction per sample row, in its order; kept in this process for the next call.

    >>> import pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from opsloop.monitoring.reference import set_reference, stored_reference
    >>> from opsloop.registry import ModelRegistry
    >>> from opsloop.store import ArtifactStore
    >>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    >>> registry = ModelRegistry(db, ArtifactStore(tmp_path))
    >>> _ = registry.register("m", LogisticRegression().fit(X, [0, 0, 1, 1]), input_schema=X)
    >>> _ = set_reference(db, "api", X, predictions=[0, 0, 0, 0], labels=[0, 0, 1, 1])
    >>> stored = stored_reference(db, "api")
    >>> stored.reference.sample.frame()["x"].tolist(), predicted_again(stored, "m", 1, registry)
    ([2.0, 1.0, 0.0, 3.0], [1, 0, 0, 1])
    """
    record = registry.get_version(model, int(version))
    # The artifact's bytes, its flavor and loader decide the model; the trust asked for
    # decides whether it may be loaded at all (a pickle's answers made with trust=True
    # must not reach a call that would be refused).
    key = (
        stored.digest,
        record.artifact_sha256,
        record.flavor,
        bool(trust),
        frozenset(trusted_types),
    )
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    # Imported here: the serving runtime's loader is needed only when a version changed.
    from opsloop.serving.loaded_variant import load_variant

    loaded = load_variant(
        registry, "reference", "primary", model, int(version), trust=trust,
        trusted_types=trusted_types,
    )  # fmt: skip
    reference = stored.reference
    inputs = reference.sample.frame()[list(reference.features)]
    made = list(loaded.predict(inputs).predictions)
    if len(made) != len(inputs):
        raise ValueError(f"{model} v{version} gave {len(made)} predictions for {len(inputs)} rows")
    with _kept_lock:
        _kept[key] = made
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
    return made


def window_reference(
    stored: StoredReference,
    version: tuple[str, int] | None,
    window_rows: pd.DataFrame | None,
    task: str,
    *,
    registry: Any = None,
    trust: bool = False,
    trusted_types: Iterable[str] = (),
) -> ReweightedReference:
    """The reference's errors, made by ``version`` (``(model, version)``: the one whose
    window is judged; ``None`` when unknown), weighted to ``window_rows`` for ``task``:
    the reference's own predictions when they are that version's (or when either version
    is unknown), else that version's predictions made again with ``registry`` (see the
    module docstring), or the ``note`` saying why there are none.

    >>> import pandas as pd
    >>> from opsloop.monitoring.reference import set_reference, stored_reference
    >>> frame = pd.DataFrame({"x": [float(i % 7) for i in range(40)]})
    >>> _ = set_reference(db, "api", frame, predictions=[i % 2 for i in range(40)],
    ...                   labels=[0] * 40, predicted_by=("credit", 1))
    >>> judged = window_reference(stored_reference(db, "api"), ("credit", 1), frame, "accuracy")
    >>> judged.predictions, float(judged.errors.mean()), len(judged.weights)
    ({'model': 'credit', 'version': 1, 'predicted_again': False}, 0.5, 40)
    """
    by = stored.predicted_by
    reference = stored.reference
    if by is None or version is None or by == version:
        found = reweighted_reference(reference, window_rows, task)
        return replace(found, predictions=None if by is None else _whose(by, False))
    if not reference.has_labels or window_rows is None or window_rows.empty:
        # Without labels or a window sample no errors are weighted, whoever predicted.
        return reweighted_reference(reference, window_rows, task)
    mismatch = (
        f"the reference's predictions are {by[0]} v{by[1]}'s and the window's errors "
        f"{version[0]} v{version[1]}'s"
    )
    if registry is None:
        return ReweightedReference(None, None, note=(
            f"{mismatch}; no registry to load v{version[1]} with and predict the reference "
            "again (give the evaluation an ActionContext with a registry)"
        ))  # fmt: skip
    try:
        again = predicted_again(
            stored, version[0], version[1], registry, trust=trust, trusted_types=trusted_types
        )
    # Whatever the version's loading or its model raises, the window is still judged: the
    # decay says it cannot tell, and why.
    except Exception as error:
        return ReweightedReference(None, None, note=(
            f"{mismatch}; v{version[1]} could not predict the reference again: "
            f"{type(error).__name__}: {str(error)[:300]}"
        ))  # fmt: skip
    found = reweighted_reference(reference, window_rows, task, predictions=again)
    return replace(found, predictions=_whose(version, True))


__all__ = ["KEPT", "predicted_again", "window_reference"]
