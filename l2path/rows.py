"""Typed rows: the one conversion between a stage's frozen dataclasses and the rows of its CSV
tables (``to_row`` / ``from_row``) or its metrics JSON (``to_json`` / ``from_json``).

A field's column (or JSON key) is its name, or the name given by ``column("lambda")`` where
the column is not a Python name. ``to_row`` gives the dict the table was always written from,
in the table's column order (pandas takes a table's columns from its rows' key order).

Read back from a CSV (``read_rows``), an empty cell is NaN: a ``str`` field reads it as "" and
an optional field (``bool | None``, ``float | None``) as None; ``to_row`` writes None as NaN,
the empty cell it came from. Every value is checked against its field's type when a record is
made, and ``from_row`` / ``from_json`` raise ValueError naming unknown and missing keys, so a
renamed column fails loudly instead of reading as a default.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Mapping, TypeVar

import numpy as np
import pandas as pd

from . import atomic

R = TypeVar("R", bound="Row")


def column(name: str, **kwargs: Any) -> Any:
    """A dataclass field whose column (or JSON key) is ``name``."""
    return dataclasses.field(metadata={"column": name}, **kwargs)


def _blank(value: Any) -> bool:
    """An empty CSV cell as pandas reads it (NaN), or a value left out."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _convert(value: Any, hint: Any, name: str) -> Any:
    """``value`` as the type ``hint`` says, or ValueError naming the field."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (inner,) = [h for h in typing.get_args(hint) if h is not type(None)]
        return None if _blank(value) else _convert(value, inner, name)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(_convert(value, str, name))
        except ValueError:
            raise ValueError(f"{name} = {value!r} is none of {[m.value for m in hint]}") from None
    if isinstance(hint, type) and issubclass(hint, Row):
        if isinstance(value, hint):
            return value
        if isinstance(value, Mapping):
            return hint.from_json(value)
    elif hint is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if value in ("True", "False"):
            return value == "True"
    elif hint is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        # an int column with blank cells reads back as floats
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, Enum):
            return str(value.value)
        if isinstance(value, str):
            return value
        if _blank(value):
            return ""
    else:
        return value  # a container type: the record checks it itself
    raise ValueError(f"{name} = {value!r} is not a {getattr(hint, '__name__', hint)}")


def _out(value: Any) -> Any:
    """A field's value as today's rows held it: an enum's string, NaN for None."""
    if isinstance(value, Enum):
        return value.value
    return math.nan if value is None else value


class Row:
    """Base of a frozen dataclass that is a table row or a metrics object (see the module)."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _convert(getattr(self, f.name), hints[f.name], f.name))

    @classmethod
    def columns(cls) -> dict[str, str]:
        """Column (or JSON key) -> field name, in the table's order."""
        return {f.metadata.get("column", f.name): f.name for f in dataclasses.fields(cls)}

    def row_columns(self) -> tuple[str, ...]:
        """The columns this row writes (all of them, unless a subclass says otherwise)."""
        return tuple(self.columns())

    @classmethod
    def blank_columns(cls, row: Mapping[str, Any]) -> tuple[tuple[str, ...], frozenset[str]]:
        """(the columns ``row`` must have, the other columns it may have only blank)."""
        return tuple(cls.columns()), frozenset()

    def to_row(self) -> dict[str, Any]:
        names = self.columns()
        return {c: _out(getattr(self, names[c])) for c in self.row_columns()}

    @classmethod
    def from_row(cls: type[R], row: Mapping[str, Any]) -> R:
        """The record of a row (a ``to_row`` dict, or a row read back by ``read_rows``)."""
        required, may_be_blank = cls.blank_columns(row)
        missing = [c for c in required if c not in row]
        unknown = [
            c for c in row if c not in required and not (c in may_be_blank and _blank(row[c]))
        ]
        if missing or unknown:
            raise ValueError(f"{cls.__name__}: missing {missing}, unknown {unknown} in {dict(row)}")
        names = cls.columns()
        return cls(**{names[c]: row[c] for c in required})

    def to_json(self) -> dict[str, Any]:
        """The object as the metrics JSON holds it (a nested record as its own object; an
        optional nested record left out when None)."""
        out = {}
        for key, name in self.columns().items():
            value = getattr(self, name)
            if isinstance(value, Row):
                out[key] = value.to_json()
            elif value is not None:
                out[key] = _out(value)
        return out

    @classmethod
    def from_json(cls: type[R], obj: Mapping[str, Any]) -> R:
        hints = typing.get_type_hints(cls)
        names = cls.columns()
        optional = {key for key, name in names.items() if _optional(hints[name])}
        missing = [k for k in names if k not in obj and k not in optional]
        unknown = [k for k in obj if k not in names]
        if missing or unknown:
            raise ValueError(f"{cls.__name__}: missing {missing}, unknown {unknown} in {dict(obj)}")
        # an optional key that ``to_json`` left out (its value was None) reads back as None
        return cls(**{name: obj.get(key) for key, name in names.items()})


def _optional(hint: Any) -> bool:
    return (isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union) and type(
        None
    ) in typing.get_args(hint)


def frame(rows: list[Row]) -> pd.DataFrame:
    """The table of ``rows``, built as it always was: from their dicts, in order."""
    return pd.DataFrame([r.to_row() for r in rows])


def write_rows(path: str | Path, rows: list[Row]) -> None:
    """``rows`` as a CSV table (``atomic.write_csv``)."""
    atomic.write_csv(path, frame(rows))


def read_rows(path: str | Path, cls: type[R]) -> list[R]:
    """The records of a table written by ``write_rows`` (none when it has no rows). Floats are
    parsed to round-trip, so the records hold the very numbers that were written."""
    try:
        table = pd.read_csv(
            path, keep_default_na=False, na_values=[""], float_precision="round_trip"
        )

    except pd.errors.EmptyDataError:
        return []
    return [cls.from_row(row) for row in table.to_dict("records")]
