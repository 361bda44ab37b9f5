"""DuckDB's engine without the Python layer of the ``duckdb`` package, for the paths that must start fast.

``import duckdb`` takes about 0.12 s, of which the compiled engine (``_duckdb``) is 0.02 s: the rest
is the package's relational and expression API written in Python, and ``importlib.metadata`` for its
version. Reading the catalog, checking a query with DuckDB's parser and running it in the SQL worker
use only the engine (``connect``, ``execute``, ``fetch*``, ``extract_statements``, ``tokenize`` and
the exception classes). The package re-exports those same objects from ``_duckdb``, so code written
against either name sees one set of classes (an ``except duckdb.Error`` catches both). A DuckDB
build without a top-level ``_duckdb`` falls back to the package.

    from tools.duckdb_core import duckdb
"""

from __future__ import annotations

from typing import Any, TypeAlias

try:
    import _duckdb as duckdb
except ImportError:  # pragma: no cover - a DuckDB that does not ship its engine as ``_duckdb``
    import duckdb  # type: ignore[no-redef]

__all__ = ["DuckDBConfig", "duckdb", "one_row"]

# The value types ``duckdb.connect(config=...)`` accepts: its stubs take an invariant ``dict`` of these,
# so a config built in a variable needs this annotation (a ``dict[str, bool]`` is refused).
DuckDBConfig: TypeAlias = dict[str, str | bool | int | float | list[str]]


def one_row(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The row of a statement that always returns exactly one (an aggregate, a setting, a sniff).

    ``fetchone()`` is typed ``tuple | None``; no row here would be DuckDB's fault, so it is an error."""
    row = con.fetchone()
    if row is None:
        raise RuntimeError("DuckDB returned no row for a statement that always returns one")
    return row
