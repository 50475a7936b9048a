"""A versioned data schema: the contract that training and serving data must both satisfy.

A :class:`Schema` is inferred from data (:func:`~opsloop.data.schema.infer_schema`), read and
written as YAML that a person can edit, and changed in code through methods that return a new
schema with ``version`` one higher. Editing the YAML by hand does not change the version: bump
it in the file when the contract changes, so that a validation result (which records the
version it was checked against) can be traced to the contract in force.

Environments follow TensorFlow Data Validation's ``not_in_environment``: the schema lists the
environment names (e.g. ``training``, ``serving``), and a column lists those it is absent from
(``absent_in``). Validating without naming an environment expects every column.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from opsloop.data.excerpt import excerpt
from opsloop.data.schema.column import ColumnSchema


@dataclass(frozen=True)
class Schema:
    """Column contracts plus version, environments and where the schema came from.

    Parameters
    ----------
    columns
        One :class:`ColumnSchema` per column, in frame order; names are unique.
    version
        Positive integer, raised by one by every editing method.
    environments
        Names of the environments the data is validated in (empty: no environments).
    created_at
        ISO 8601 time the schema was inferred, or ``None``.
    source_rows
        Number of rows it was inferred from, or ``None``.

    >>> schema = Schema((ColumnSchema("x", "int"), ColumnSchema("y", "bool")))
    >>> schema.names
    ('x', 'y')
    >>> schema.update_column("x", min=0).version
    2
    """

    columns: tuple[ColumnSchema, ...]
    version: int = 1
    environments: tuple[str, ...] = ()
    created_at: str | None = None
    source_rows: int | None = None

    def __post_init__(self) -> None:
        columns = self.columns
        if isinstance(columns, ColumnSchema) or not isinstance(columns, list | tuple):
            raise TypeError(
                f"schema columns must be a list of ColumnSchema, got {excerpt(columns)}"
            )
        for column in columns:
            if not isinstance(column, ColumnSchema):
                raise TypeError(f"schema columns must be ColumnSchema, got {excerpt(column)}")
        object.__setattr__(self, "columns", tuple(columns))
        names = [c.name for c in columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"schema: column {excerpt(duplicates[0])} is defined more than once")
        object.__setattr__(self, "version", _count("version", self.version, minimum=1))
        self._check_environments()
        self._check_metadata()

    # -- reading -------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in schema order.

        >>> Schema((ColumnSchema("a", "float"),)).names
        ('a',)
        """
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> ColumnSchema:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"schema has no column {excerpt(name)}; columns: {', '.join(self.names)}")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def expected_columns(self, environment: str | None = None) -> tuple[ColumnSchema, ...]:
        """Columns that belong to ``environment`` (all of them when it is ``None``).

        >>> schema = Schema(
        ...     (ColumnSchema("x", "int"), ColumnSchema("y", "bool", absent_in=("serving",))),
        ...     environments=("training", "serving"),
        ... )
        >>> [c.name for c in schema.expected_columns("serving")]
        ['x']
        """
        if environment is None:
            return self.columns
        if environment not in self.environments:
            known = ", ".join(self.environments) if self.environments else "none defined"
            raise ValueError(
                f"unknown environment {excerpt(environment)}; schema environments: {known}"
            )
        return tuple(c for c in self.columns if environment not in c.absent_in)

    def serving_columns(self) -> tuple[ColumnSchema, ...]:
        """The columns a served record carries: those of the ``serving`` environment where
        the schema has one, else every column. A model version's input signature gives
        its model these columns only, so a column kept for training alone (``absent_in``
        serving) is in no served record.

        >>> schema = Schema(
        ...     (ColumnSchema("x", "int"), ColumnSchema("y", "bool", absent_in=("serving",))),
        ...     environments=("training", "serving"),
        ... )
        >>> [c.name for c in schema.serving_columns()]
        ['x']
        >>> [c.name for c in Schema((ColumnSchema("x", "int"),)).serving_columns()]
        ['x']
        """
        return self.expected_columns("serving" if "serving" in self.environments else None)

    # -- editing (each returns a new schema, version + 1) -------------------------------------

    def with_column(self, column: ColumnSchema) -> Schema:
        """Add ``column``, or replace the column of the same name.

        >>> Schema(()).with_column(ColumnSchema("x", "float")).names
        ('x',)
        """
        if not isinstance(column, ColumnSchema):
            raise TypeError(f"with_column expects a ColumnSchema, got {excerpt(column)}")
        if column.name in self:
            columns = tuple(column if c.name == column.name else c for c in self.columns)
        else:
            columns = (*self.columns, column)
        return self._next(columns=columns)

    def without_column(self, name: str) -> Schema:
        """Drop the column ``name``.

        >>> Schema((ColumnSchema("x", "int"),)).without_column("x").names
        ()
        """
        self[name]  # raises a KeyError naming the columns
        return self._next(columns=tuple(c for c in self.columns if c.name != name))

    def update_column(self, name: str, **changes: Any) -> Schema:
        """Change fields of the column ``name`` (checked as on construction).

        >>> Schema((ColumnSchema("x", "int"),)).update_column("x", max=9)["x"].max
        9
        """
        return self.with_column(dataclasses.replace(self[name], **changes))

    def with_environment(self, name: str, absent: Iterable[str] = ()) -> Schema:
        """Add environment ``name`` with the columns in ``absent`` left out of it.

        >>> schema = Schema((ColumnSchema("label", "bool"),)).with_environment(
        ...     "serving", absent=["label"])
        >>> schema.environments, schema["label"].absent_in
        (('serving',), ('serving',))
        """
        if name in self.environments:
            raise ValueError(f"environment {excerpt(name)} already exists")
        absent = [absent] if isinstance(absent, str) else list(absent)
        for column in absent:
            self[column]
        columns = tuple(
            dataclasses.replace(c, absent_in=(*c.absent_in, name)) if c.name in absent else c
            for c in self.columns
        )
        return self._next(columns=columns, environments=(*self.environments, name))

    # -- serialising ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary, with one entry per column under ``columns``.

        >>> Schema((ColumnSchema("x", "bool"),)).to_dict()["columns"]
        {'x': {'type': 'bool', 'required': True, 'max_null_fraction': 0.0}}
        """
        out: dict[str, Any] = {
            "version": self.version,
            "created_at": self.created_at,
            "source_rows": self.source_rows,
        }
        if self.environments:
            out["environments"] = list(self.environments)
        out["columns"] = {c.name: c.to_dict() for c in self.columns}
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Schema:
        """Build a schema from :meth:`to_dict`'s layout, checking every key and field.

        >>> Schema.from_dict({"columns": {"x": {"type": "int"}}}).names
        ('x',)
        >>> Schema.from_dict({"columns": {}, "owner": "me"})
        Traceback (most recent call last):
        ValueError: schema: unknown key 'owner'; allowed: columns, version, ...
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"schema: expected a mapping at the top level, got {excerpt(data)}")
        allowed = ["columns", *(f.name for f in fields(cls) if f.name != "columns")]
        unknown = [key for key in data if key not in allowed]
        if unknown:
            raise ValueError(
                f"schema: unknown key {excerpt(unknown[0])}; allowed: {', '.join(allowed)}"
            )
        if "columns" not in data:
            raise ValueError("schema: key 'columns' is missing")
        blocks = data["columns"]
        if blocks is None:
            blocks = {}
        if not isinstance(blocks, Mapping):
            raise TypeError(
                "schema key 'columns': expected a mapping of column name to fields, "
                f"got {excerpt(blocks)}"
            )
        columns = tuple(ColumnSchema.from_dict(name, block) for name, block in blocks.items())
        environments = data.get("environments") or ()
        if isinstance(environments, str) or not isinstance(environments, list | tuple):
            raise TypeError(
                f"schema key 'environments': expected a list, got {excerpt(environments)}"
            )
        return cls(
            columns=columns,
            version=data.get("version", 1),
            environments=tuple(environments),
            created_at=data.get("created_at"),
            source_rows=data.get("source_rows"),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per column, one column per :class:`ColumnSchema` field.

        >>> Schema((ColumnSchema("x", "int", min=0),)).to_frame()[["name", "type", "min"]]
          name type min
        0    x  int   0
        """
        names = [f.name for f in fields(ColumnSchema)]
        rows = [[getattr(c, name) for name in names] for c in self.columns]
        return pd.DataFrame(rows, columns=names, dtype=object)

    def _repr_html_(self) -> str:
        return f"<p>schema version {self.version}</p>" + self.to_frame()._repr_html_()

    def to_yaml(self) -> str:
        """The schema as YAML, one block per column.

        >>> schema = Schema((ColumnSchema("x", "int", min=0),), created_at="2024-01-01")
        >>> print(schema.to_yaml(), end="")
        version: 1
        created_at: '2024-01-01'
        source_rows: null
        columns:
          x:
            type: int
            required: true
            max_null_fraction: 0.0
            min: 0
        """
        data = self.to_dict()
        text = _dump(data, allow_unicode=True)
        # PyYAML writes some characters (NEL, line and paragraph separators) raw and then
        # reads them back as line breaks; escaping everything outside ASCII is always exact.
        if yaml.load(text, Loader=_SchemaLoader) != data:
            text = _dump(data, allow_unicode=False)
        return text

    @classmethod
    def from_yaml(cls, source: str | os.PathLike[str]) -> Schema:
        """Read a schema from YAML text or a file.

        A :class:`~pathlib.Path` (any path-like) is read as a file, and so is a one-line
        string naming an existing file; any other string is YAML text.

        >>> Schema.from_yaml("columns: {x: {type: float, min: 0}}")["x"].min
        0
        """
        if isinstance(source, os.PathLike) or (
            isinstance(source, str) and "\n" not in source and Path(source).is_file()
        ):
            text = Path(source).read_text(encoding="utf-8")
        elif isinstance(source, str):
            text = source
        else:
            raise TypeError(f"from_yaml expects YAML text or a path, got {type(source).__name__}")
        try:
            # _SchemaLoader is a SafeLoader: what safe_load reads, and no Python objects.
            data = yaml.load(text, Loader=_SchemaLoader)
        except yaml.YAMLError as error:
            raise ValueError(f"schema: not valid YAML: {error}") from error
        return cls.from_dict(data)

    # -- internals -----------------------------------------------------------------------

    def _next(self, **changes: Any) -> Schema:
        return dataclasses.replace(self, version=self.version + 1, **changes)

    def _check_environments(self) -> None:
        environments = self.environments
        if isinstance(environments, str) or not isinstance(environments, list | tuple):
            raise TypeError(
                f"schema field 'environments': expected a list, got {excerpt(environments)}"
            )
        for name in environments:
            if not isinstance(name, str) or not name:
                raise TypeError(
                    f"schema field 'environments': names must be strings, got {excerpt(name)}"
                )
        if len(set(environments)) != len(environments):
            raise ValueError("schema field 'environments': a name is listed twice")
        object.__setattr__(self, "environments", tuple(environments))
        for column in self.columns:
            for name in column.absent_in:
                if name not in environments:
                    raise ValueError(
                        f"column {excerpt(column.name)}, field 'absent_in': {excerpt(name)} "
                        "is not one of the "
                        f"schema environments ({', '.join(environments) or 'none defined'})"
                    )

    def _check_metadata(self) -> None:
        created = self.created_at
        if isinstance(created, dt.datetime | dt.date):
            # An unquoted timestamp in hand-written YAML loads as a datetime.
            object.__setattr__(self, "created_at", created.isoformat())
        elif created is not None and not isinstance(created, str):
            raise TypeError(
                f"schema field 'created_at': expected ISO 8601 text, got {excerpt(created)}"
            )
        if self.source_rows is not None:
            object.__setattr__(self, "source_rows", _count("source_rows", self.source_rows, 0))


class _SchemaDumper(yaml.SafeDumper):
    """Safe YAML with lists (domains, environments) on one line, mappings as blocks."""


_SchemaDumper.add_representer(
    list,
    lambda dumper, value: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", value, flow_style=True
    ),
)


def _dump(data: dict[str, Any], allow_unicode: bool) -> str:
    return yaml.dump(
        data,
        Dumper=_SchemaDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=allow_unicode,
    )


class _SchemaLoader(yaml.SafeLoader):
    """Safe YAML that rejects a key written twice (plain YAML keeps the last silently)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen = []
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise ValueError(
                f"schema: key {excerpt(key)} appears twice (line {key_node.start_mark.line + 1})"
            )
        seen.append(key)
    return loader.construct_mapping(node)


_SchemaLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _count(field: str, value: Any, minimum: int) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        raise TypeError(f"schema field {excerpt(field)}: expected an integer, got {excerpt(value)}")
    if value < minimum:
        raise ValueError(f"schema field {excerpt(field)}: must be at least {minimum}, got {value}")
    return int(value)
