"""A library record that travels as a pydantic document: validated by the document's
bounds, handed to the library as the record.

A Protocol's parameter is annotated ``Annotated[Record, sent_as(Document, build)]``: for a
type checker it is the record; the body model generated from the Protocol validates the
JSON against ``Document`` (a 422 names the field that breaks it), builds the record with
``build`` and describes the document in the OpenAPI schema. The client sends the record's
own fields (:func:`pydantic_core.to_jsonable_python` on the dataclass), so the document
lists the record's fields, with their bounds.

>>> from dataclasses import dataclass
>>> from typing import Annotated
>>> from pydantic import BaseModel, Field, TypeAdapter
>>> @dataclass(frozen=True)
... class Size:
...     width: int
>>> class SizeIn(BaseModel):
...     width: int = Field(ge=1)
>>> sizes = TypeAdapter(Annotated[Size, sent_as(SizeIn, lambda doc: Size(doc.width))])
>>> sizes.validate_python({"width": 3})
Size(width=3)
>>> sizes.validate_python({"width": 0})
Traceback (most recent call last):
pydantic_core._pydantic_core.ValidationError: 1 validation error for function-after[...]
width
  Input should be greater than or equal to 1 ...
...
>>> sizes.json_schema()["properties"]["width"]["minimum"]
1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, GetPydanticSchema
from pydantic_core import core_schema

Document = TypeVar("Document", bound=BaseModel)


def sent_as(document: type[Document], build: Callable[[Document], Any]) -> GetPydanticSchema:
    """The annotation under which a record is validated as ``document`` and built by
    ``build`` (see the module's example)."""

    def schema(_source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            build, handler.generate_schema(document)
        )

    return GetPydanticSchema(schema)
