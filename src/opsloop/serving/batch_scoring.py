"""Batch scoring: a file of rows scored by a deployment, as if each row were a request.

:func:`score_frame` scores one frame: every row is checked against the signature of each
variant that scores it (:mod:`.row_rejection`, the serving path's per-record rules), the
rows that break a rule are set aside with the row number, field, rule and a detail, and the
others are scored by the deployment's primary variant or, with ``all_variants``, by every
variant (one prediction column each, and, with ``probabilities``, where the model answers
probabilities, one probability column per class: :func:`probability_columns`). Every scored
row is recorded as a prediction event, as a served request is: role ``batch`` for the
primary variant's answer and ``batch_shadow`` for the other variants' (with
``all_variants``), so that, as with a served request's shadow answers, a label of the row
judges the primary's answer only and a candidate's task metric never comes from rows no
split sent it. Its request id is the batch's id and the row number, so the same row has the
same id whatever the chunking. Each event carries the generation of the definition whose
variants scored it (:mod:`.retired_names`): a batch keeps the variants it looked up when it
started, so if the deployment is retired while a long batch runs, the rows scored after the
retire are kept with the retired deployment's history (``NAME/retired-N``), never with a
deployment created later under the name.

:func:`score_file` does it over a CSV or Parquet file in chunks of ``chunk_size`` rows, so
memory stays bounded by the chunk: the scored rows go to ``output`` (CSV or Parquet, by its
suffix), the rejected rows to a CSV side file. Events are written to the runtime's sink
chunk by chunk, in the calling thread: a batch waits for its events rather than dropping
them, unlike the request path.

>>> import pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> from opsloop.registry import ModelRegistry
>>> from opsloop.serving import Deployments, ServingRuntime, Variant
>>> from opsloop.store import ArtifactStore, Database
>>> db, artifacts = Database("sqlite://"), ArtifactStore(tmp_path)
>>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
>>> _ = ModelRegistry(db, artifacts).register(
...     "line", LinearRegression().fit(X, [1.0, 3.0, 5.0]), input_schema=X)
>>> _ = Deployments(db).deploy("api", [Variant("stable", "line", version=1)])
>>> runtime = ServingRuntime(db, artifacts)
>>> scored = score_frame(runtime, "api", pd.DataFrame({"x": [0.5, "a", 1.5]}),
...                      batch_id="b1")
>>> scored.scored[["row", "request_id", "prediction"]].round(6).values.tolist()
[[0, 'b1-0', 2.0], [2, 'b1-2', 4.0]]
>>> scored.rejected[["row", "field", "rule"]].values.tolist()
[[1, 'x', 'type_mismatch']]
>>> runtime.close()
"""

from __future__ import annotations

import contextlib
import lzma
import os
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opsloop.data.io import table_format
from opsloop.errors import InvalidArgumentError, OpsloopError
from opsloop.serving.loaded_variant import LoadedVariant
from opsloop.serving.prediction_events import PredictionEvent
from opsloop.serving.row_rejection import (
    REJECTION_COLUMNS,
    missing_columns,
    rejected_rows,
    signature_columns,
    typed_from_text,
)
from opsloop.serving.serving_runtime import ServingRuntime

#: The role of a batch row's prediction events.
BATCH_ROLE = "batch"
#: The role of a batch row's answer by a variant other than the primary (``all_variants``).
BATCH_SHADOW_ROLE = "batch_shadow"
#: Rows per chunk unless told otherwise.
DEFAULT_CHUNK_SIZE = 10_000
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


@dataclass(frozen=True)
class ScoredFrame:
    """One frame scored: ``scored`` holds the rows that passed (``row``, ``request_id``,
    the input's columns, one prediction column per variant and its probability columns
    where it has them), ``rejected`` one line per
    rejected row (``row``, ``variant``, ``field``, ``rule``, ``detail`` and the row's
    values), and ``events`` counts the prediction events written."""

    scored: pd.DataFrame
    rejected: pd.DataFrame
    events: int


@dataclass(frozen=True)
class BatchScoring:
    """What :func:`score_file` did: rows read, scored and rejected, chunks, the variants
    that scored, the events written, the batch id (the prefix of every request id) and the
    files written.

    >>> BatchScoring("api", "b1", 3, 2, 1, 1, ("stable",), 2, "out.csv", "out.rejected.csv",
    ...              0.5).to_dict()["rejected"]
    1
    """

    deployment: str
    batch_id: str
    rows: int
    scored: int
    rejected: int
    chunks: int
    variants: tuple[str, ...]
    events: int
    output: str
    rejected_path: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready values."""
        document = asdict(self)
        document["variants"] = list(self.variants)
        return document


@dataclass(frozen=True)
class ChunkProgress:
    """Progress after a chunk: rows read so far, and how far through the input (``done``
    of ``total``, in bytes of a CSV file or rows of a Parquet file)."""

    rows: int
    scored: int
    rejected: int
    done: int
    total: int


def prediction_column(variant: str, all_variants: bool) -> str:
    """The output column holding ``variant``'s predictions.

    >>> prediction_column("stable", False), prediction_column("canary", True)
    ('prediction', 'prediction_canary')
    """
    return f"prediction_{variant}" if all_variants else "prediction"


def probability_columns(
    variant: str, all_variants: bool, classes: list | None, count: int
) -> list[str]:
    """The output columns holding ``variant``'s probability of each class (written with
    ``probabilities``), in the order of the answer's ``classes`` (the data plane's
    ``probabilities`` and ``classes``), one per class of ``count``: ``probability_<class>``,
    or ``probability_<variant>@<class>`` with ``all_variants`` (a variant's name holds no
    ``@``, so two variants' columns never share a name); a model that names no classes
    numbers them from 0.

    >>> probability_columns("stable", False, ["no", "yes"], 2)
    ['probability_no', 'probability_yes']
    >>> probability_columns("canary", True, None, 2)
    ['probability_canary@0', 'probability_canary@1']
    """
    names = classes if classes is not None and len(classes) == count else range(count)
    prefix = f"probability_{variant}@" if all_variants else "probability_"
    return [f"{prefix}{name}" for name in names]


def scoring_variants(runtime: ServingRuntime, deployment: str, all_variants: bool):
    """The loaded variants that score a batch: the primary, or every variant (shadows
    included) in definition order; a variant that failed to load stops the batch.

    >>> from opsloop.store import Database
    >>> scoring_variants(ServingRuntime(Database("sqlite://"), None), "api", False)
    Traceback (most recent call last):
    opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'api'
    """
    return scoring_definition(runtime, deployment, all_variants)[0]


def scoring_definition(
    runtime: ServingRuntime, deployment: str, all_variants: bool
) -> tuple[list[LoadedVariant], int]:
    """:func:`scoring_variants` and the generation of the definition they were read with
    (one read, so the two always belong together), which the batch's events carry.

    >>> from opsloop.store import Database
    >>> scoring_definition(ServingRuntime(Database("sqlite://"), None), "api", False)
    Traceback (most recent call last):
    opsloop.serving.deployments.UnknownDeploymentError: no deployment named 'api'
    """
    served = runtime.served(deployment)
    names = [
        variant.name
        for variant in served.definition.variants
        if all_variants or variant.role == "primary"
    ]
    return [served.variant(name) for name in names], served.definition.generation


def score_frame(
    runtime: ServingRuntime,
    deployment: str,
    frame: pd.DataFrame,
    *,
    all_variants: bool = False,
    first_row: int = 0,
    batch_id: str | None = None,
    variants: list[LoadedVariant] | None = None,
    generation: int | None = None,
    probabilities: bool = False,
) -> ScoredFrame:
    """Score ``frame`` with ``deployment`` (see the module): its rows are numbered from
    ``first_row``; ``batch_id`` prefixes the request ids (default: a new one);
    ``probabilities`` adds each class's probability (:func:`probability_columns`);
    ``variants`` and ``generation`` are those of :func:`scoring_definition` when already
    looked up (``variants`` alone: the events name no generation).

    >>> from opsloop.store import Database
    >>> score_frame(ServingRuntime(Database("sqlite://"), None), "api", pd.DataFrame(),
    ...             first_row=-1)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: first_row must be an integer >= 0, got -1
    """
    if isinstance(first_row, bool) or not isinstance(first_row, int) or first_row < 0:
        raise InvalidArgumentError(f"first_row must be an integer >= 0, got {first_row!r}")
    batch_id = batch_id or uuid.uuid4().hex
    if variants is None:
        variants, generation = scoring_definition(runtime, deployment, all_variants)
    scored, events = score_rows(
        deployment,
        frame,
        variants,
        all_variants=all_variants,
        first_row=first_row,
        batch_id=batch_id,
        clock=runtime.db.clock,
        generation=generation,
        probabilities=probabilities,
    )
    if events:
        runtime.recorder.sink.write(events)
    return scored


def score_rows(
    deployment: str,
    frame: pd.DataFrame,
    variants: list[LoadedVariant],
    *,
    all_variants: bool,
    first_row: int,
    batch_id: str,
    clock: Callable[[], int],
    generation: int | None = None,
    probabilities: bool = False,
) -> tuple[ScoredFrame, list[PredictionEvent]]:
    """:func:`score_frame`'s work without a runtime: the scored frame and the prediction
    events (time-stamped by ``clock``, carrying ``generation``), which the caller writes;
    a Dask worker scores a partition with it (:mod:`.distributed_scoring`).

    >>> double = LoadedVariant("s", "primary", "m", 1, "python", None, lambda f: f.x * 2)
    >>> scored, events = score_rows("api", pd.DataFrame({"x": [1, 2]}), [double],
    ...     all_variants=False, first_row=5, batch_id="b", clock=lambda: 0, generation=3)
    >>> scored.scored["prediction"].tolist(), [(e.request_id, e.generation) for e in events]
    ([2, 4], [('b-5', 3), ('b-6', 3)])
    """
    frame = frame.reset_index(drop=True)
    rows = np.arange(first_row, first_row + len(frame))
    columns = {prediction_column(v.name, all_variants) for v in variants} | {"row", "request_id"}
    clashing = sorted(columns & {str(name) for name in frame.columns})
    if clashing:
        raise InvalidArgumentError(
            f"input: column {clashing[0]!r} clashes with an output column of the same name"
        )
    inputs = {str(name) for name in frame.columns}
    refused = []
    keep = np.ones(len(frame), dtype=bool)
    for variant in variants:
        if variant.schema is None:
            continue
        missing_columns(frame.columns, variant.schema)
        found = rejected_rows(frame, variant.schema, first_row)
        if len(found):
            refused.append(found.assign(variant=variant.name))
            keep[found["row"].to_numpy() - first_row] = False
    rejected = _rejection_lines(refused, frame, first_row)
    passed = frame[keep].reset_index(drop=True)
    request_ids = [f"{batch_id}-{row}" for row in rows[keep]]
    scored = pd.DataFrame({"row": rows[keep], "request_id": request_ids})
    scored = pd.concat([scored, passed], axis=1)
    events = []
    for variant in variants:
        model_frame = _model_frame(passed, variant)
        started = time.perf_counter()
        answer = variant.predict(model_frame) if len(model_frame) else None
        seconds = time.perf_counter() - started
        predictions = [] if answer is None else answer.predictions
        scored[prediction_column(variant.name, all_variants)] = pd.Series(
            predictions, dtype=None if predictions else float
        )
        if probabilities and answer is not None and answer.probabilities is not None:
            scored = _with_probabilities(scored, inputs, variant.name, all_variants, answer)
        if answer is not None:
            events += _events(
                clock, deployment, variant, request_ids, model_frame, answer, seconds, generation
            )
    return ScoredFrame(scored, rejected, len(events)), events


def _with_probabilities(
    scored: pd.DataFrame, inputs: set[str], variant: str, all_variants: bool, answer
) -> pd.DataFrame:
    """``scored`` with one column per class of the answer's probabilities (see
    :func:`probability_columns`), refused when one is an input column's name or another
    variant's (or two classes of the variant give one name)."""
    values = np.asarray(answer.probabilities, dtype=float)
    names = probability_columns(variant, all_variants, answer.classes, values.shape[1])
    if clashing := sorted(set(names) & inputs):
        raise InvalidArgumentError(
            f"input: column {clashing[0]!r} clashes with the probability column of the same "
            "name that probabilities (--probabilities) adds; rename the input column, or "
            "score without it"
        )
    if taken := sorted(set(names) & {str(name) for name in scored.columns}):
        raise InvalidArgumentError(
            f"probabilities: variant {variant!r} answers a probability column "
            f"{taken[0]!r} that another variant's output takes already"
        )
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise InvalidArgumentError(
            f"probabilities: variant {variant!r} has two classes named as column {twice!r}"
        )
    added = pd.DataFrame(values, columns=names, index=scored.index)
    return pd.concat([scored, added], axis=1)


def _model_frame(passed: pd.DataFrame, variant: LoadedVariant) -> pd.DataFrame:
    """The rows as the variant's model takes them: the signature's columns, in its order,
    numeric columns as numbers."""
    if variant.schema is None:
        return passed
    frame = pd.DataFrame(index=passed.index)
    for column in signature_columns(variant.schema):
        values = passed[column.name]
        if column.type in ("int", "float") and values.dtype == object:
            values = pd.to_numeric(values)
        if column.type == "int" and values.dtype.kind == "f" and not values.isna().any():
            values = values.astype(np.int64)
        frame[column.name] = values
    return frame


def _events(
    clock: Callable[[], int],
    deployment: str,
    variant: LoadedVariant,
    request_ids: list[str],
    model_frame: pd.DataFrame,
    answer,
    seconds: float,
    generation: int | None,
) -> list[PredictionEvent]:
    # A batch has no per-row latency: each row is charged its share of the chunk's.
    latency_ms = seconds * 1000.0 / len(request_ids)
    at_ms = clock()
    records = model_frame.astype(object).where(model_frame.notna(), None).to_dict("records")
    probabilities = answer.probabilities
    return [
        PredictionEvent(
            deployment=deployment,
            variant=variant.name,
            role=BATCH_ROLE if variant.role == "primary" else BATCH_SHADOW_ROLE,
            model=variant.model_name,
            version=variant.version,
            request_id=request_id,
            routing_key=None,
            inputs=[record],
            output={
                "predictions": [prediction],
                "probabilities": None if probabilities is None else [probabilities[position]],
                "classes": answer.classes,
            },
            error=None,
            latency_ms=latency_ms,
            at_ms=at_ms,
            generation=generation,
            routed=False,  # no split routes a batch's rows: no gate reads their labels
        )
        for position, (request_id, record, prediction) in enumerate(
            zip(request_ids, records, answer.predictions, strict=True)
        )
    ]


def _rejection_lines(refused: list[pd.DataFrame], frame: pd.DataFrame, first_row: int):
    """One line per rejected row: its first broken rule (``detail`` lists them all) and
    the row's values as read."""
    header = ["row", "variant", *REJECTION_COLUMNS[1:]]
    if not refused:
        return pd.DataFrame(columns=[*header, *frame.columns])
    problems = pd.concat(refused, ignore_index=True).sort_values("row", kind="stable")
    lines = []
    for row, group in problems.groupby("row", sort=True):
        first = group.iloc[0]
        detail = "; ".join(
            f"field {field!r}: {rule} ({text})"
            for field, rule, text in zip(
                group["field"], group["rule"], group["detail"], strict=True
            )
        )
        lines.append((int(row), first["variant"], first["field"], first["rule"], detail))
    head = pd.DataFrame(lines, columns=header)
    values = frame.iloc[head["row"].to_numpy() - first_row].reset_index(drop=True)
    return pd.concat([head, values], axis=1)


# -- files ---------------------------------------------------------------------------------


def rejected_path_for(output: str | os.PathLike[str]) -> Path:
    """The default side file of ``output``'s rejected rows.

    >>> rejected_path_for("out/scores.parquet").as_posix()
    'out/scores.rejected.csv'
    """
    output = Path(output)
    return output.with_name(f"{output.name.split('.')[0]}.rejected.csv")


def _chunks(path: Path, chunk_size: int) -> Iterator[tuple[pd.DataFrame, bool, int, int]]:
    """The input in chunks: (frame, whether it is text, done, total)."""
    fmt = table_format(path) if not path.is_dir() else "parquet"
    if fmt in ("csv", "tsv"):
        total = path.stat().st_size
        compression = _COMPRESSION.get(path.suffix.lower())
        with path.open("rb") as raw:
            reader = pd.read_csv(
                raw,
                sep="," if fmt == "csv" else "\t",
                dtype=str,
                chunksize=chunk_size,
                compression=compression,
            )
            for chunk in reader:
                yield chunk, True, raw.tell(), total
        return
    if fmt != "parquet":
        raise InvalidArgumentError(f"input: {path} is {fmt}; batch scoring reads CSV or Parquet")
    import pyarrow.dataset as ds

    dataset = ds.dataset(path, format="parquet")
    total, done = dataset.count_rows(), 0
    for batch in dataset.to_batches(batch_size=chunk_size):
        if batch.num_rows:
            done += batch.num_rows
            yield batch.to_pandas(), False, done, total


class _UnreadableInput(Exception):
    """The input stopped reading after ``rows`` rows; ``reason`` is what the reader said."""

    def __init__(self, rows: int, reason: str) -> None:
        super().__init__(reason)
        self.rows = rows
        self.reason = reason


def _decompression_errors() -> tuple[type[BaseException], ...]:
    """What the decompressors raise on damaged data, beyond ``OSError`` (gzip, bz2):
    xz's ``LZMAError``, zlib's error, and zstandard's ``ZstdError`` where it is installed."""
    errors: list[type[BaseException]] = [lzma.LZMAError, zlib.error]
    with contextlib.suppress(ImportError):
        import zstandard

        errors.append(zstandard.ZstdError)
    return tuple(errors)


def _read_chunks(path: Path, chunk_size: int) -> Iterator[tuple[pd.DataFrame, bool, int, int]]:
    """:func:`_chunks`, with a file the reader cannot parse (a malformed line, text that is
    not UTF-8, a damaged or empty file) reported as :class:`_UnreadableInput` with the rows
    read before it. Only the reading is caught: scoring errors pass through untouched."""
    fmt = table_format(path) if not path.is_dir() else "parquet"
    rows = 0
    try:
        for chunk in _chunks(path, chunk_size):
            rows += len(chunk[0])
            yield chunk
    except OpsloopError:
        # Our own refusal (an unreadable format, say) already names the input.
        raise
    except pd.errors.EmptyDataError as error:
        raise _UnreadableInput(rows, "the file is empty") from error
    except (ValueError, OSError, EOFError, *_decompression_errors()) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise _UnreadableInput(
            rows, f"cannot read as {fmt}: {first_line or type(error).__name__}"
        ) from error


class _Output:
    """The scored rows' file, written chunk by chunk (CSV, or Parquet by its suffix)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = table_format(path)
        if self.format not in ("csv", "tsv", "parquet"):
            raise InvalidArgumentError(
                f"output: {path} is {self.format}; batch scoring writes CSV or Parquet"
            )
        self._writer = None
        self._handle = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, table.schema)
            elif table.schema != self._writer.schema:
                table = table.cast(self._writer.schema)
            self._writer.write_table(table)
            return
        first = self._handle is None
        if first:
            self._handle = self.path.open("w", newline="")
        frame.to_csv(
            self._handle, index=False, header=first, sep="," if self.format == "csv" else "\t"
        )

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._handle is not None:
            self._handle.close()


def _stable_types(frame: pd.DataFrame, integer_columns: set[str]) -> pd.DataFrame:
    """Integer columns as nullable integers, so each chunk of a file has the same types
    whether or not it holds a null."""
    for name in integer_columns & set(frame.columns):
        with contextlib.suppress(TypeError, ValueError):
            frame[name] = pd.to_numeric(frame[name]).astype("Int64")
    return frame


def score_file(
    runtime: ServingRuntime,
    deployment: str,
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    all_variants: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    rejected_path: str | os.PathLike[str] | None = None,
    on_chunk: Callable[[ChunkProgress], None] | None = None,
    probabilities: bool = False,
) -> BatchScoring:
    """Score the CSV or Parquet file ``input_path`` with ``deployment`` chunk by chunk,
    writing the scored rows to ``output`` and the rejected rows to ``rejected_path``
    (default: :func:`rejected_path_for`); ``on_chunk`` hears after each chunk;
    ``probabilities`` adds each class's probability (:func:`probability_columns`).

    >>> from opsloop.store import Database
    >>> score_file(ServingRuntime(Database("sqlite://"), None), "api", "in.csv", "out.csv",
    ...            chunk_size=0)
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: chunk_size must be a positive integer, got 0
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     source = Path(folder) / "in.csv"
    ...     _ = source.write_text("x\\n1\\n")
    ...     score_file(ServingRuntime(Database("sqlite://"), None), "api", source,
    ...                Path(folder) / "missing" / "out.csv")
    Traceback (most recent call last):
    opsloop.errors.InvalidArgumentError: output: ... does not exist
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise InvalidArgumentError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    input_path, output = Path(input_path), Path(output)
    rejected_path = Path(rejected_path) if rejected_path else rejected_path_for(output)
    if not input_path.exists():
        raise InvalidArgumentError(f"input: {input_path}: no such file")
    if len({input_path.resolve(), output.resolve(), rejected_path.resolve()}) < 3:
        raise InvalidArgumentError("output: the input, output and rejected files must differ")
    # Checked before either file is opened, so the error names what the caller gave.
    for name, path in (("output", output), ("rejected_path", rejected_path)):
        if not path.parent.is_dir():
            raise InvalidArgumentError(f"{name}: {path.parent} does not exist")
    started = time.perf_counter()
    # Read once: every chunk is scored by these variants, and its events carry their
    # definition's generation, even if the deployment changes while the batch runs.
    variants, generation = scoring_definition(runtime, deployment, all_variants)
    integers = {
        column.name
        for variant in variants
        if variant.schema is not None
        for column in signature_columns(variant.schema)
        if column.type == "int"
    }
    # A CSV file's text is read by the first signature (variants of one deployment
    # normally share theirs); each variant's own rules are applied after.
    text_schema = next((v.schema for v in variants if v.schema is not None), None)
    batch_id = uuid.uuid4().hex
    sink, rows, scored, rejected, chunks, events = _Output(output), 0, 0, 0, 0, 0
    last: ScoredFrame | None = None
    try:
        with rejected_path.open("w", newline="") as side:
            for frame, is_text, done, total in _read_chunks(input_path, chunk_size):
                if is_text and text_schema is not None:
                    frame = typed_from_text(frame, text_schema)
                last = score_frame(
                    runtime,
                    deployment,
                    frame,
                    all_variants=all_variants,
                    first_row=rows,
                    batch_id=batch_id,
                    variants=variants,
                    generation=generation,
                    probabilities=probabilities,
                )
                if len(last.scored):
                    sink.write(_stable_types(last.scored, integers))
                last.rejected.to_csv(side, index=False, header=chunks == 0)
                rows += len(frame)
                scored += len(last.scored)
                rejected += len(last.rejected)
                events += last.events
                chunks += 1
                if on_chunk is not None:
                    on_chunk(ChunkProgress(rows, scored, rejected, done, total))
            if last is None:
                raise InvalidArgumentError(f"input: {input_path} has no rows")
        if scored == 0:
            sink.write(_stable_types(last.scored, integers))
    except _UnreadableInput as error:
        # Rows before the unreadable part were scored, written and recorded: say so, so
        # that a rerun after the file is mended knows what it repeats.
        done_before = (
            f"; the {rows} rows before it were scored into {output} (rejected into "
            f"{rejected_path}) and recorded as batch {batch_id}"
            if rows
            else ""
        )
        raise InvalidArgumentError(f"input: {input_path}: {error.reason}{done_before}") from error
    finally:
        sink.close()
    return BatchScoring(
        deployment,
        batch_id,
        rows,
        scored,
        rejected,
        chunks,
        tuple(variant.name for variant in variants),
        events,
        str(output),
        str(rejected_path),
        time.perf_counter() - started,
    )
