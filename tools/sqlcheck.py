"""The parse-tree check of guarded SQL: one read-only query over known tables, nothing else.

It uses DuckDB's own parser (``extract_statements`` for statement count and type,
``json_serialize_sql`` for the tree), never regexes, so comments, casing and quoting cannot hide
a second statement or a file read. ``tools.sqlguard`` runs what passes on a locked-down connection.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from tools.duckdb_core import duckdb, one_row  # the engine alone: `dossier sql` starts fast

# Names a user table may never take (the warehouse prefixes them) and a query may never read.
INTERNAL_PREFIX = "_dossier"
SYSTEM_PREFIXES = ("duckdb_", "pg_", "sqlite_", "pragma_", INTERNAL_PREFIX)
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp"})
# Table functions that generate rows from their arguments and touch no file or catalog.
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
_DENIED_FUNCTIONS = {
    **dict.fromkeys(("getenv", "current_setting", "getvariable", "current_query", "which_secret"),
                    "reads the environment or session state"),
    **dict.fromkeys(("nextval", "currval", "setseed"), "reads or changes session state"),
    **dict.fromkeys(("sleep_ms", "pg_sleep"), "only stalls the server"),
    **dict.fromkeys(("query", "query_table", "json_execute_serialized_sql"), "runs SQL the check cannot see"),
    **dict.fromkeys(("sniff_csv", "glob"), "reads the file system"),
}
_DENIED_FUNCTION_PREFIXES = ("read_", "parquet_", "duckdb_", "pragma_", "pg_get_")
_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
# Parsing and planning are not interruptible: a 100 KB statement ran 4-11 s past a 1 s time limit.
MAX_SQL_CHARS = 20_000
# Scalar functions whose result size is an argument, not their input (argument position). DuckDB
# folds a constant call while planning, outside its memory limit and deaf to interrupt():
# ``SELECT range(1000000000)`` asked for 8 GB and ``repeat([1], 100000000)`` ran 30 s in 6 GB.
_SIZE_ARGUMENT = {"repeat": 1, "list_resize": 1, "array_resize": 1, "lpad": 1, "rpad": 1,
                  "bitstring": 1, "to_base": 2, "bar": 3, "equi_width_bins": 2}
_FORMATTERS = frozenset({"printf", "format"})  # widths inside the format string's specs
_FORMAT_SPEC_RE = re.compile(r"%[^a-zA-Z%]*|\{[^{}]*\}")  # '%08.2' of '%08.2f', '{:>12}'
MAX_BUILT_SIZE = 10_000  # per query: the product of every size above, so lambdas cannot compose them


class SqlRefused(ValueError):
    """The statement was not run; ``str(exc)`` says why and what to do instead."""


class SqlTimeout(RuntimeError):
    """The statement ran past the time limit and was interrupted."""


class SqlFailed(RuntimeError):
    """DuckDB rejected a statement that passed the check (unknown column, type error, …)."""


def check_sql(sql: str, *, allowed_tables: set[str]) -> list[str]:
    """Return the tables ``sql`` reads, or raise ``SqlRefused`` with a specific reason."""
    if "\x00" in sql:
        raise SqlRefused("the query contains a NUL byte")
    if len(sql) > MAX_SQL_CHARS:
        raise SqlRefused(f"the query is {len(sql):,} characters long (limit {MAX_SQL_CHARS:,}); "
                         "filter or aggregate in SQL instead of listing values")
    statement = _single_statement(sql)
    tree = _parse_tree(statement.query)
    known = {t.lower(): t for t in allowed_tables}
    sizes: dict[int, int] = {}  # id(call node) -> what it builds
    found = [ref for ref in _walk(tree, None) if _check_node(ref, known, sizes)]
    if (built := math.prod(sizes.values())) > MAX_BUILT_SIZE:
        raise SqlRefused(f"the query builds values of up to {built:,} elements or characters "
                         f"(repeat, lpad, range, … multiplied; limit {MAX_BUILT_SIZE:,})")
    return sorted({known[str(node.get("table_name")).lower()] for node, _ in found})


def _single_statement(sql: str) -> duckdb.Statement:
    try:
        with _PARSER_LOCK:
            statements = _parser().extract_statements(sql)
    except Exception as exc:  # ParserException and friends
        raise SqlRefused(f"the query could not be parsed: {_first_line(exc)}") from exc
    if not statements:
        raise SqlRefused("the query is empty; send one SELECT or WITH query")
    if len(statements) > 1:
        kinds = ", ".join(_kind(s) for s in statements)
        raise SqlRefused(f"exactly one statement is allowed; got {len(statements)} ({kinds})")
    statement = statements[0]
    kind = _type_name(statement)
    if kind == "MULTI":
        raise SqlRefused("PIVOT without an explicit IN list is not allowed; list the values: "
                         "PIVOT t ON col IN ('a', 'b') USING sum(x)")
    if kind != "SELECT":
        raise SqlRefused(f"only SELECT/WITH queries are allowed; got {_kind(statement)}")
    return statement


def _type_name(statement: duckdb.Statement) -> str:
    try:
        return statement.type.name
    except ValueError:  # statement kinds newer than the Python binding's enum (UPDATE EXTENSIONS)
        return "UNKNOWN"


def _kind(statement: duckdb.Statement) -> str:
    """The statement's first word, which names it better than its type (CHECKPOINT is a CALL)."""
    word, name = (statement.query.split() or [""])[0].upper(), _type_name(statement)
    return name if not word.isalpha() or word == name else f"{word} ({name} statement)"


_PARSER_LOCK = threading.Lock()


@functools.cache
def _parser() -> duckdb.DuckDBPyConnection:
    # An in-memory connection of our own (not duckdb's shared default); json is built in.
    return duckdb.connect(":memory:", config={"enable_external_access": False})


def _parse_tree(sql: str) -> dict[str, Any]:
    with _PARSER_LOCK:
        text = one_row(_parser().execute("SELECT json_serialize_sql(?)", [sql]))[0]
    try:
        tree = json.loads(text)
    except RecursionError as exc:
        raise SqlRefused("the query is nested too deeply") from exc
    if tree.get("error"):
        raise SqlRefused(f"the query could not be parsed: {tree.get('error_message', 'unknown error')}")
    return tree


def _walk(tree: Any, scope: _Scope | None) -> Iterator[tuple[dict[str, Any], _Scope | None]]:
    """Every dict in the tree with the CTE names visible at that point (iterative: deep trees).

    A non-recursive CTE's body does not see its own name (there it means a real table); a
    recursive one sees it through its RECURSIVE_CTE_NODE.
    """
    stack = [(tree, scope)]
    while stack:
        item, names = stack.pop()
        if isinstance(item, list):
            stack.extend((child, names) for child in item)
        elif isinstance(item, dict):
            if item.get("type") == "RECURSIVE_CTE_NODE":
                names = _Scope(names, frozenset({str(item.get("cte_name", "")).lower()}))
            yield item, names
            ctes = _cte_entries(item)
            inner = _Scope(names, frozenset(ctes)) if ctes else names
            for key, child in item.items():
                if key == "cte_map":
                    stack.extend((body, _Scope(inner, hidden=name)) for name, body in ctes.items())
                elif isinstance(child, (dict, list)):
                    stack.append((child, inner))


@dataclass(frozen=True)
class _Scope:
    """CTE names in scope, as a chain of frames: sibling CTE bodies share their parent frame, so N
    CTEs cost N frames, not N copies of an N-name set (10,000 CTEs took 5 GB and 50 s that way)."""

    parent: _Scope | None
    added: frozenset[str] = frozenset()
    hidden: str | None = None  # a CTE's own name, inside its (non-recursive) body

    def __contains__(self, name: str) -> bool:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.added:
                return True
            if name == scope.hidden:
                return False
            scope = scope.parent
        return False


def _cte_entries(node: dict[str, Any]) -> dict[str, Any]:
    cte_map = node.get("cte_map") or {}
    return {str(e.get("key", "")).lower(): e.get("value") for e in cte_map.get("map", [])}


def _check_node(ref: tuple[dict[str, Any], _Scope | None], known: dict[str, str], sizes: dict[int, int]) -> bool:
    """Refuse what the node may not do; True when it is a reference to a known table."""
    node, ctes = ref
    if "function_name" in node:
        _check_function(node)
        if node.get("class") == "FUNCTION" and id(node) not in sizes:  # a table function's call streams
            sizes[id(node)] = _built_size(node)
    kind = node.get("type")
    if "class" in node or not isinstance(kind, str):  # expressions: operators, columns, constants…
        return False
    if kind.endswith("_NODE") and kind not in _QUERY_NODES:
        verb = kind.removesuffix("_QUERY_NODE").removesuffix("_NODE")
        raise SqlRefused(f"only SELECT/WITH queries are allowed; got {verb} inside the query")
    if kind == "TABLE_FUNCTION":
        _check_table_function(node)
        sizes[id(node.get("function"))] = 1
    # DESCRIBE/SUMMARIZE wrap an ordinary query, checked like any other; SHOW lists the catalog.
    if kind == "SHOW_REF" and (node.get("show_type") not in ("DESCRIBE", "SUMMARY") or not node.get("query")):
        raise SqlRefused("SHOW is not allowed; use DESCRIBE <table> or the table catalog")
    return kind == "BASE_TABLE" and _check_table(node, ctes, known)


def _check_table(node: dict[str, Any], ctes: _Scope | None, known: dict[str, str]) -> bool:
    name = str(node.get("table_name", ""))
    schema, catalog = str(node.get("schema_name", "")), str(node.get("catalog_name", ""))
    key = name.lower()
    listing = _listing(known)
    if is_reserved_table_name(key) or schema.lower() in SYSTEM_SCHEMAS or catalog.lower() in SYSTEM_SCHEMAS:
        raise SqlRefused(f'system and internal tables are not allowed ("{_dotted(node)}"); {listing}')
    if catalog or schema.lower() not in ("", "main"):
        raise SqlRefused(f'schema-qualified name "{_dotted(node)}" is not allowed; '
                         f"use the bare table name; {listing}")
    if not schema and ctes is not None and key in ctes:
        return False
    if key in known:
        return True
    if any(ch in name for ch in "/\\.:*?") or name.startswith("~"):
        raise SqlRefused(f'reading files is not allowed ("{name}" looks like a path); {listing}')
    raise SqlRefused(f'unknown table "{name}"; {listing}')


def _check_table_function(node: dict[str, Any]) -> None:
    function = node.get("function") or {}
    name = str(function.get("function_name", "?")).lower()
    if name not in ALLOWED_TABLE_FUNCTIONS or function.get("schema") or function.get("catalog"):
        allowed = ", ".join(sorted(ALLOWED_TABLE_FUNCTIONS))
        raise SqlRefused(f"table function {name} is not allowed (only {allowed}); "
                         "query the warehouse tables by name")


def _check_function(node: dict[str, Any]) -> None:
    name = str(node.get("function_name", "")).lower()
    if node.get("catalog") or str(node.get("schema", "")).lower() not in ("", "main"):
        raise SqlRefused(f"schema-qualified function {node.get('schema')}.{name} is not allowed")
    reason = _DENIED_FUNCTIONS.get(name)
    if reason is None and name.startswith(_DENIED_FUNCTION_PREFIXES):
        reason = "reads files or system state"
    if reason is not None:
        raise SqlRefused(f"function {name} is not allowed ({reason})")


def _built_size(node: dict[str, Any]) -> int:
    """How many elements or characters a size-setting call builds (1 for other functions)."""
    name = str(node.get("function_name", "")).lower()
    args = [(a or {}).get("expression") or {} for a in node.get("arguments") or []]
    if name in ("range", "generate_series"):  # the list-valued scalar forms; FROM range() streams
        bounds = [b for a in args if (b := _int_literal(a)) is not None]
        if len(bounds) != len(args) or not 1 <= len(bounds) <= 3:
            raise SqlRefused(f"{name}() as a list needs integer literals; for long series select FROM {name}(…)")
        start, stop, step = ([0] if len(bounds) == 1 else []) + bounds + [1] * (3 - max(len(bounds), 2))
        try:
            return len(range(start, stop + (name == "generate_series"), step))
        except ValueError:  # step 0: DuckDB reports it
            return 1
        except OverflowError:  # more elements than a Python int can count
            return sys.maxsize
    if name in _FORMATTERS:
        text = _string_literal(args[0]) if args else None
        specs = _FORMAT_SPEC_RE.findall(text or "")
        if text is None or any("*" in spec for spec in specs) or re.search(r"\{[^{}]+\{", text):
            raise SqlRefused(f"{name}() needs a literal format string without computed widths")
        return max([1, *(int(d) for spec in specs for d in re.findall(r"\d+", spec))])
    position = _SIZE_ARGUMENT.get(name)
    if position is None or position >= len(args):
        return 1
    size = _int_literal(args[position])
    if size is None or size > MAX_BUILT_SIZE:
        raise SqlRefused(f"{name}() builds a value from its size argument, which must be an integer "
                         f"literal of at most {MAX_BUILT_SIZE:,}")
    return max(size, 1)


def _int_literal(node: dict[str, Any]) -> int | None:
    with suppress(KeyError, TypeError, ValueError):
        return int(_string_literal(node, kind=None) or "")
    return None


def _string_literal(node: dict[str, Any], *, kind: str | None = "STRING") -> str | None:
    literal = node.get("literal") if node.get("class") == "CONSTANT" else None
    if not isinstance(literal, dict) or (kind is not None and literal.get("kind") != kind):
        return None
    return str(literal.get("text"))


def is_reserved_table_name(name: str) -> bool:
    """True for names a query may never read, so the warehouse must not give them to user tables."""
    return name.lower().startswith(SYSTEM_PREFIXES) or name.lower() in SYSTEM_SCHEMAS


def _dotted(node: dict[str, Any]) -> str:
    parts = (node.get("catalog_name"), node.get("schema_name"), node.get("table_name"))
    return ".".join(str(p) for p in parts if p)


def _listing(known: dict[str, str]) -> str:
    return "known tables: " + (", ".join(sorted(known.values())) or "(none)")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
