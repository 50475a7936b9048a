"""The operation table's additions for services whose client composes some methods by hand:
composed methods, an operation that creates (201), a parameter the server fills with the
caller's name, and a parameter that is the whole body."""

from __future__ import annotations

from typing import Protocol

import pytest

from opsloop.contract import Operation, ServiceTable, over_http, wrapped
from opsloop.errors import InvalidArgumentError


class Notes(Protocol):
    def add(self, text: str, *, author: str | None = None) -> int: ...

    def copy(self, note: dict, to: str) -> None: ...

    def export(self, path: str) -> bytes: ...


def _table(**composed) -> ServiceTable:
    return ServiceTable(
        Notes,
        [
            Operation(
                "add",
                "POST",
                "/notes",
                answer=wrapped("id", int),
                created=True,
                caller="author",
            ),
            Operation("copy", "PUT", "/notes/{to}", whole_body="note"),
        ],
        **composed,
    )


class Sent:
    def __init__(self, answer: dict | None = None) -> None:
        self.answer = answer

    def json(self) -> dict | None:
        return self.answer


def _recorder(table: ServiceTable):
    @over_http(table)
    class Recorder:
        def __init__(self) -> None:
            self.sent: list[tuple] = []

        def export(self, path: str) -> bytes:
            return path.encode()

        def _call(self, verb: str, path: str, **request) -> Sent:
            self.sent.append((verb, path, request))
            return Sent({"id": 7})

    return Recorder


def test_every_method_needs_an_operation_or_to_be_composed():
    with pytest.raises(InvalidArgumentError, match="methods without an operation: export"):
        _table()
    with pytest.raises(InvalidArgumentError, match="composed names that are not methods: print"):
        _table(composed=["export", "print"])


def test_a_client_must_define_its_composed_methods():
    table = _table(composed=["export"])

    with pytest.raises(InvalidArgumentError, match="Bare: composed methods the class does not"):

        @over_http(table)
        class Bare:
            pass

    client = _recorder(table)()
    assert client.export("a.txt") == b"a.txt" and client.sent == []


def test_the_caller_parameter_is_never_sent_and_a_creation_is_a_201():
    table = _table(composed=["export"])
    add = table.operation("add")
    assert add.status == 201
    parts = table.parameters(add)
    assert (parts.body, parts.acting, parts.caller) == (("text",), True, "author")
    assert set(table.body_model(add).model_fields) == {"text"}
    client = _recorder(table)()
    assert client.add("hello") == 7
    assert client.sent == [("POST", "/notes", {"json": {"text": "hello"}})]
    with pytest.raises(InvalidArgumentError, match="the owner of the API token"):
        client.add("hello", author="mallory")


def test_a_whole_body_parameter_is_the_body_itself():
    table = _table(composed=["export"])
    assert table.body_model(table.operation("copy")) is None
    client = _recorder(table)()
    client.copy({"text": "hi", "tags": ("a",)}, "archive/2024")
    assert client.sent == [("PUT", "/notes/archive/2024", {"json": {"text": "hi", "tags": ["a"]}})]


def test_a_whole_body_parameter_must_be_the_only_one_in_the_body():
    with pytest.raises(InvalidArgumentError, match="whole_body 'note' must be the only"):
        ServiceTable(
            Notes,
            [Operation("copy", "PUT", "/notes", whole_body="note")],
            composed=["add", "export"],
        )


def test_only_an_answer_marked_bodiless_as_none_reads_an_empty_body_as_none():
    import json

    import httpx

    from opsloop.contract import Answer

    class Counts(Protocol):
        def told(self, name: str) -> str | None: ...

        def count(self, name: str) -> dict: ...

    def told_or_none(document: dict | None) -> str | None:
        return None if document is None else document["status"]

    table = ServiceTable(
        Counts,
        [
            Operation(
                "told",
                "POST",
                "/told/{name}",
                answer=Answer(dict, decode=told_or_none, bodiless_as_none=True),
            ),
            Operation("count", "GET", "/count/{name}", answer=Answer(dict)),
        ],
    )

    @over_http(table)
    class Empty:
        def _call(self, verb: str, path: str, **request) -> httpx.Response:
            return httpx.Response(204 if verb == "POST" else 200)

    assert Empty().told("a") is None
    # A document was due: an empty 200 (a proxy's truncated answer) is an error, not None.
    with pytest.raises(json.JSONDecodeError):
        Empty().count("a")
