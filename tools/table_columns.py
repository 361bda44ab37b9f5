"""Python cell values (from openpyxl or sqlite3) into Arrow columns, one batch at a time.

``RowColumns`` takes rows one by one under the import's limits and turns every batch into one
Arrow array per column at once, so only a batch of Python objects is ever alive. A column's type
comes from its values (``column_array``); when batches disagree (ints, then text) the column is
unified at the end: ints with floats become floats, dates with timestamps become timestamps, and
anything else becomes text, rendered exactly as a single batch would have rendered it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa

from tools.table_limits import Deadline, TableLimits

BATCH_ROWS = 20_000


class RowColumns:
    def __init__(self, limits: TableLimits, deadline: Deadline):
        self.limits = limits
        self.deadline = deadline
        self.rows = 0
        self.bytes = 0
        self._chunks: list[list[pa.Array]] = []  # per column, one array per flushed batch
        self._lengths: list[int] = []  # rows in each flushed batch
        self._pending: list[tuple[Any, ...]] = []

    @property
    def width(self) -> int:
        return len(self._chunks)

    def add(self, row: tuple[Any, ...]) -> None:
        if len(row) > self.width:
            self.limits.check_columns(len(row))
            self._chunks += [[pa.nulls(n, pa.string()) for n in self._lengths] for _ in range(len(row) - self.width)]
        self.rows += 1
        self.limits.check_rows(self.rows, self.width)
        self.bytes += sum(_size(v) for v in row)
        self.limits.check_bytes(self.bytes)
        self._pending.append(row)
        if len(self._pending) >= BATCH_ROWS:
            self._flush()

    def columns(self, width: int) -> list[pa.ChunkedArray]:
        """Every column (padded with nulls up to ``width``), types unified across batches."""
        self._flush()
        while self.width < width:
            self._chunks.append([pa.nulls(n, pa.string()) for n in self._lengths])
        return [_unify(chunks) for chunks in self._chunks]

    def _flush(self) -> None:
        self.deadline.check()
        if not self._pending:
            return
        rows, n = self._pending, len(self._pending)
        for i, chunks in enumerate(self._chunks):
            chunks.append(column_array([r[i] if i < len(r) else None for r in rows]))
        self._lengths.append(n)
        self._pending = []


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, bytearray)) else 8


def _unify(chunks: list[pa.Array]) -> pa.ChunkedArray:
    if not chunks:
        return pa.chunked_array([], pa.string())
    types = {c.type for c in chunks if c.null_count < len(c)}  # an all-null batch takes any type
    if not types:
        target = chunks[0].type
    elif len(types) == 1:
        target = next(iter(types))
    elif types <= {pa.int64(), pa.float64()}:
        target = pa.float64()
    elif types <= {pa.date32(), pa.timestamp("us")}:
        target = pa.timestamp("us")
    else:
        target = pa.string()
    return pa.chunked_array([_cast(c, target) for c in chunks], target)


def _cast(chunk: pa.Array, target: pa.DataType) -> pa.Array:
    if chunk.type == target:
        return chunk
    if target == pa.string():  # the same rendering column_array gives a mixed column
        return pa.array([None if v is None else as_text(v) for v in chunk.to_pylist()], pa.string())
    return chunk.cast(target)


def arrow_table(names: list[str], columns: list[list[Any]]) -> pa.Table:
    return pa.table({name: column_array(values) for name, values in zip(names, columns)})


def column_array(values: list[Any]) -> pa.Array:
    """One Arrow type per column from Python cell values; mixed columns fall back to text."""
    kinds = {_kind(v) for v in values if v is not None}
    if kinds == {"datetime"} and all(v is None or v == _midnight(v) for v in values):
        return pa.array([None if v is None else v.date() for v in values], pa.date32())
    arrow_type = _ARROW_TYPES.get(frozenset(kinds))
    if arrow_type is not None:
        try:
            return pa.array(values, arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # e.g. an integer beyond int64: keep it exact as text
    return pa.array([None if v is None else as_text(v) for v in values], pa.string())


_ARROW_TYPES: dict[frozenset[str], pa.DataType] = {
    frozenset(): pa.string(),
    frozenset({"bool"}): pa.bool_(),
    frozenset({"int"}): pa.int64(),
    frozenset({"float"}): pa.float64(),
    frozenset({"int", "float"}): pa.float64(),
    frozenset({"datetime"}): pa.timestamp("us"),
    frozenset({"date"}): pa.date32(),
    frozenset({"time"}): pa.time64("us"),
    frozenset({"bytes"}): pa.binary(),
    frozenset({"text"}): pa.string(),
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, (float, Decimal)):
        return "float"
    if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    return "text" if isinstance(value, str) else "other"


def _midnight(value: dt.datetime) -> dt.datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def as_text(value: Any) -> str:
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())
