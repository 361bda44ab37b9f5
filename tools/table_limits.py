"""The bounds every table import runs under (rows, columns, cells, bytes, time, memory).

Built from ``KBSettings`` (``max_table_*``, ``table_import_timeout_s``, ``table_memory_limit``);
a table past any bound is refused with a one-line reason that names the setting to raise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

MB = 2**20


class TableImportError(Exception):
    """A table file could not be imported; ``str(exc)`` is a one-line reason."""


@dataclass(frozen=True)
class TableLimits:
    max_bytes: int = 512 * MB
    max_unpacked_bytes: int = 512 * MB
    max_rows: int = 20_000_000
    max_columns: int = 1000
    max_cells: int = 50_000_000
    max_value_bytes: int = 16 * MB
    timeout_s: float = 120.0
    memory_limit: str = "1GB"

    @classmethod
    def from_settings(cls, settings: Any) -> TableLimits:
        return cls(
            max_bytes=int(settings.max_table_mb * MB),
            max_unpacked_bytes=int(settings.max_table_unpacked_mb * MB),
            max_rows=settings.max_table_rows,
            max_columns=settings.max_table_columns,
            max_cells=settings.max_table_cells,
            max_value_bytes=int(settings.max_table_value_mb * MB),
            timeout_s=settings.table_import_timeout_s,
            memory_limit=settings.table_memory_limit,
        )

    def check_columns(self, columns: int) -> None:
        if columns > self.max_columns:
            raise TableImportError(
                f"table too wide: {columns:,} columns, limit {self.max_columns:,} (max_table_columns)")

    def row_cap(self, columns: int) -> int:
        """Rows a table of ``columns`` columns may have under both the row and the cell limit."""
        return max(1, min(self.max_rows, self.max_cells // max(columns, 1)))

    def check_rows(self, rows: int, columns: int) -> None:
        if rows > self.max_rows:
            raise TableImportError(f"table too long: more than {self.max_rows:,} rows (max_table_rows)")
        if rows * max(columns, 1) > self.max_cells:
            raise TableImportError(
                f"table too large: more than {self.max_cells:,} cells (rows x columns, max_table_cells)")

    def check_bytes(self, size: int, what: str = "table data") -> None:
        if size > self.max_bytes:
            raise TableImportError(f"{what} larger than {self.max_bytes / MB:g} MB limit (max_table_mb)")


class Deadline:
    """A wall-clock budget for one import; ``check()`` raises once it is spent."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() > self.end

    def check(self) -> None:
        if self.expired():
            raise self.error()

    def error(self) -> TableImportError:
        return TableImportError(f"import took longer than {self.seconds:g} s (table_import_timeout_s)")
