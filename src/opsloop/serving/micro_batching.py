"""Adaptive micro-batching: concurrent requests to one variant answered by one model call.

A model's call costs much more than its rows: a 100-tree forest takes about as long for 16
rows as for one. When a deployment's settings turn batching on
(:class:`~opsloop.serving.deployment_settings.MicroBatching`), each of its variants gets a
:class:`MicroBatcher` on the data plane's event loop. A request whose records are checked
joins the variant's pending batch and waits for its share of the answer. The batch goes to
the model as soon as one of these holds:

* it holds ``max_batch_size`` records;
* no other request is on its way to a batcher (:class:`Arrivals`): nobody else can join, so
  waiting would only add latency. A lone client (concurrency 1) is answered at once;
* its first request has waited ``max_wait_ms``: the bound on the wait for company. The
  model's time comes on top, and on a busy loop a timer fires late by what runs before it.

A request carrying more records than ``max_batch_size`` is answered alone. Requests whose
checked records differ in form (a float matrix and a frame, or frames with other column
types) are not mixed: each form is its own model call, so each request's model sees the
input it would have seen alone. Each request gets exactly its rows of the answer. If the
batched call fails, each request of it is answered alone, so one request's failure stays
its own.

Equal answers: the rows of a batch are predicted as the same rows one by one would be.
For models that compute row by row (trees, forests, a callable on each row) the answers are
bit for bit the same. A model whose arithmetic is a matrix product (a linear model) may sum
a row's products in another order inside a larger product (BLAS), so its probabilities may
differ in the last bits (within 1e-12 relative is what the tests hold them to); its
predictions are the same.

>>> import asyncio
>>> import numpy as np
>>> from opsloop.serving.deployment_settings import MicroBatching
>>> from opsloop.serving.loaded_variant import LoadedVariant
>>> calls = []
>>> def model(frame):
...     calls.append(len(frame))
...     return frame.x * 2
>>> variant = LoadedVariant("s", "primary", "m", 1, "python", None, model)
>>> arrivals = Arrivals()
>>> batcher = MicroBatcher(variant, MicroBatching(8, 50.0), arrivals)
>>> async def three():
...     tokens = [arrivals.start() for _ in range(3)]  # three requests under way
...     async def one(token, x):
...         token.done()  # checked, joining the batch
...         return await batcher.answer(variant.check([{"x": x}]))
...     return await asyncio.gather(*(one(t, x) for t, x in zip(tokens, (1, 2, 3))))
>>> [answer.predictions for answer in asyncio.run(three())], calls
([[2], [4], [6]], [3])
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from opsloop.serving.deployment_settings import MicroBatching
from opsloop.serving.loaded_variant import LoadedVariant, VariantAnswer
from opsloop.serving.record_validation import CheckedRecords


class Arrival:
    """One request on its way to a batcher; :meth:`done` once it joins one (or ends).

    >>> arrivals = Arrivals(); token = arrivals.start(); token.done(); token.done()
    >>> arrivals.waiting
    0
    """

    def __init__(self, arrivals: Arrivals) -> None:
        self._arrivals: Arrivals | None = arrivals

    def done(self) -> None:
        """The request no longer counts as coming (idempotent)."""
        if self._arrivals is not None:
            self._arrivals.waiting -= 1
            self._arrivals = None


class Arrivals:
    """How many prediction requests have begun (their body read, their caller and records
    being checked) and not yet joined a batch: a batch waits for company only while this
    is positive. Used on the event loop only.

    >>> Arrivals().waiting
    0
    """

    def __init__(self) -> None:
        self.waiting = 0

    def start(self) -> Arrival:
        """Count a request that has begun."""
        self.waiting += 1
        return Arrival(self)


@dataclass
class _Job:
    checked: CheckedRecords
    future: asyncio.Future


def _form(checked: CheckedRecords) -> tuple:
    """What a batch's members must share so their union is what each would be alone."""
    if checked.matrix is not None:
        return ("matrix", checked.names)
    frame = checked.frame
    return ("frame", tuple(frame.columns), tuple(str(dtype) for dtype in frame.dtypes))


def _union(members: list[CheckedRecords]) -> CheckedRecords:
    first = members[0]
    if len(members) == 1:
        return first
    matrices = [checked.matrix for checked in members if checked.matrix is not None]
    if len(matrices) == len(members):
        # Column-major, as each request's own matrix and a frame's values are.
        return CheckedRecords(first.names, matrix=np.asfortranarray(np.vstack(matrices)))
    frame = pd.concat([checked.frame for checked in members], ignore_index=True)
    return CheckedRecords(first.names, frame=frame)


def _share(answer: VariantAnswer, start: int, stop: int) -> VariantAnswer:
    return replace(
        answer,
        predictions=answer.predictions[start:stop],
        probabilities=None if answer.probabilities is None else answer.probabilities[start:stop],
    )


class MicroBatcher:
    """The pending batch of one variant (see the module). ``on_batch`` is told the
    records of every model call it makes (for the metrics).

    >>> from opsloop.serving.loaded_variant import LoadedVariant
    >>> variant = LoadedVariant("s", "primary", "m", 1, "python", None, abs)
    >>> MicroBatcher(variant, MicroBatching(4, 1.0), Arrivals()).settings.max_batch_size
    4
    """

    def __init__(
        self,
        variant: LoadedVariant,
        settings: MicroBatching,
        arrivals: Arrivals,
        *,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.variant = variant
        self.settings = settings
        self.arrivals = arrivals
        self.on_batch = on_batch
        self._pending: list[_Job] = []
        self._rows = 0
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False

    async def answer(self, checked: CheckedRecords) -> VariantAnswer:
        """The variant's answer for ``checked``, from a batch with other requests' records
        when they come in time."""
        if len(checked) >= self.settings.max_batch_size:
            return self._call([checked])[0]
        loop = asyncio.get_running_loop()
        job = _Job(checked, loop.create_future())
        if not self._pending:
            self._deadline = loop.time() + self.settings.max_wait_ms / 1000.0
        elif self._rows + len(checked) > self.settings.max_batch_size:
            self._flush()  # the pending batch is as full as this request lets it be
            self._deadline = loop.time() + self.settings.max_wait_ms / 1000.0
        self._pending.append(job)
        self._rows += len(checked)
        if self._rows >= self.settings.max_batch_size:
            self._flush()
        elif not self._soon:
            # Judged once the requests that are ready to run have had their turn: those
            # the loop has just read may be about to join.
            self._soon = True
            loop.call_soon(self._judge)
        return await job.future

    def _judge(self) -> None:
        self._soon = False
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        if self.arrivals.waiting <= 0 or loop.time() >= self._deadline:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_at(self._deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        if self._pending:
            self._flush()

    def _flush(self) -> None:
        jobs, self._pending, self._rows = self._pending, [], 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        groups: dict[tuple, list[_Job]] = {}
        for job in jobs:
            groups.setdefault(_form(job.checked), []).append(job)
        for group in groups.values():
            try:
                answers = self._call([job.checked for job in group])
            except Exception:
                answers = None
            for position, job in enumerate(group):
                if job.future.done():  # its request was cancelled (the client left)
                    continue
                if answers is not None:
                    job.future.set_result(answers[position])
                    continue
                try:  # alone, so that only the request that fails gets the failure
                    job.future.set_result(self._call([job.checked])[0])
                except Exception as error:
                    job.future.set_exception(error)

    def _call(self, members: list[CheckedRecords]) -> list[VariantAnswer]:
        union = _union(members)
        answer = self.variant.predict(union)
        if self.on_batch is not None:
            self.on_batch(len(union))
        shares, start = [], 0
        for checked in members:
            stop = start + len(checked)
            shares.append(_share(answer, start, stop))
            start = stop
        return shares
