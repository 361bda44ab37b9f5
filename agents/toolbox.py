"""The research tools both engines call: document search, the table catalog and guarded SQL.

Each call returns a small, citable result: the text an agent reads (with evidence ids to cite) and
the Evidence objects. A failed call is not an exception: it returns ``ok=False`` with a message the
agent can act on (fix the SQL, widen the query).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from tools.evidence import evidence_from_hit, evidence_from_sql
from tools.knowledge_base import KnowledgeBase
from tools.models import TableInfo
from tools.sqlguard import SqlFailed, SqlRefused, SqlTimeout
from tools.vocabulary import Evidence, ToolCall

PASSAGE_PREVIEW = 600  # characters of each passage shown to the model


@dataclass
class ToolOutcome:
    ok: bool
    text: str
    evidence: list[Evidence] = field(default_factory=list)


class Toolbox:
    """One per research branch: records its tool calls and the evidence they produced."""

    def __init__(self, kb: KnowledgeBase, *, search_k: int = 6) -> None:
        self.kb = kb
        self.search_k = search_k
        self.calls: list[ToolCall] = []
        self.evidence: dict[str, Evidence] = {}

    # The model-facing tools are these four methods: their names, docstrings (the model's manual) and
    # annotated parameters are what the LLM engine offers (agents/llm/tools.py derives the schemas).
    async def search_documents(
        self,
        query: Annotated[str, Field(description="What to look for; try synonyms or the other language "
                                                "if nothing matches.")],
        k: Annotated[int | None, Field(ge=1, le=50, description="Number of passages (default: the configured "
                                                                  "number).")] = None,
        source: Annotated[str | None, Field(description="Optional glob on document paths, "
                                                         "e.g. 'docs/legal/*'.")] = None,
    ) -> ToolOutcome:
        """Search the document corpus (hybrid: meaning + keywords). Returns passages, each with an evidence id to cite."""  # noqa: E501  (the tool's description, one line)
        k = k or self.search_k  # the model may ask for more or fewer; the setting is the default
        args = {"query": query, "k": k, "source": source}
        if not query.strip():
            return self._record("search_documents", args, ToolOutcome(False, "empty query: give search words"))
        hits = await self.kb.search(query, k=k, source=source)
        evidence = [evidence_from_hit(h) for h in hits]
        if not evidence:
            text = f"no passages match {query!r}; try other words, synonyms or the other language"
            return self._record("search_documents", args, ToolOutcome(False, text))
        text = "\n\n".join(f"[ev:{e.id}] {e.label()}\n{e.text[:PASSAGE_PREVIEW]}" for e in evidence)
        return self._record("search_documents", args, ToolOutcome(True, text, evidence))

    async def list_tables(self) -> ToolOutcome:
        """List the warehouse tables with row counts and columns."""
        tables = await self.kb.tables()
        text = "\n".join(catalog_line(t) for t in tables) or "the warehouse has no tables"
        return self._record("list_tables", {}, ToolOutcome(bool(tables), text))

    async def describe_table(
        self, name: Annotated[str, Field(description="A table name from list_tables.")],
    ) -> ToolOutcome:
        """Describe one table: columns, types, sample values and ranges."""
        try:
            info = await self.kb.describe_table(name)
        except KeyError as exc:
            return self._record("describe_table", {"name": name}, ToolOutcome(False, str(exc).strip("'\"")))
        return self._record("describe_table", {"name": name}, ToolOutcome(True, describe_text(info)))

    async def run_sql(self, sql: Annotated[str, Field(description="One read-only SELECT or WITH query.")],
                      ) -> ToolOutcome:
        """Run one read-only SELECT (or WITH) query over the warehouse tables. Returns rows and an evidence id."""
        try:
            result = await self.kb.sql(sql)
        except SqlRefused as exc:
            return self._record("run_sql", {"sql": sql}, ToolOutcome(False, f"SQL refused: {exc}"))
        except (SqlFailed, SqlTimeout) as exc:
            return self._record("run_sql", {"sql": sql}, ToolOutcome(False, f"SQL failed: {exc}"))
        ev = evidence_from_sql(result)
        if result.row_count == 0:
            text = f"[ev:{ev.id}] the query returned no rows; check filters and values (see describe_table)"
            return self._record("run_sql", {"sql": sql}, ToolOutcome(False, text, [ev]))
        return self._record("run_sql", {"sql": sql}, ToolOutcome(True, f"[ev:{ev.id}]\n{ev.text}", [ev]))

    def _record(self, tool: str, args: dict, outcome: ToolOutcome) -> ToolOutcome:
        for ev in outcome.evidence:
            self.evidence[ev.id] = ev
        self.calls.append(ToolCall(
            tool=tool, arguments=args, ok=outcome.ok, summary=outcome.text[:300],
            evidence_ids=[e.id for e in outcome.evidence],
        ))
        return outcome


def catalog_line(info: TableInfo) -> str:
    cols = ", ".join(f"{c.name} {c.type}" for c in info.columns)
    desc = f" — {info.description}" if info.description else ""
    return f"{info.name} ({info.row_count} rows){desc}: {cols}"


def describe_text(info: TableInfo) -> str:
    lines = [catalog_line(info)]
    for c in info.columns:
        bits = [f"{c.name} {c.type}"]
        if c.description:
            bits.append(c.description)
        if c.samples:
            bits.append("values e.g. " + ", ".join(map(str, c.samples[:5])))
        if c.min is not None:
            bits.append(f"range {c.min} .. {c.max}")
        lines.append("  - " + "; ".join(bits))
    return "\n".join(lines)
