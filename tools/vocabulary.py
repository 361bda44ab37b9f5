"""The research vocabulary every layer speaks: Evidence, the plan, findings, reflection, the outline,
sections, verification and the Report.

It is the one module of tools/ that is not data access: it sits at the bottom layer so agents, graphs and
the public API share one definition of each (DESIGN.md §2 and §9). Evidence ids are content hashes, so the
same passage, or the same query with the same result, always gets the same id across branches, rounds,
resumed runs and engines (tools/evidence.py makes them from search hits and SQL results).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

# rows kept in SQL evidence (a 5-year monthly or 60-year yearly series); the rest are summarised by row_count
SQL_ROWS_SHOWN = 60


class Evidence(BaseModel):
    id: str
    kind: Literal["passage", "sql"]
    text: str  # the passage, or a compact rendering of the result rows
    # passage provenance
    doc_id: str | None = None
    source: str | None = None
    title: str | None = None
    section: str | None = None
    page: int | None = None
    char_start: int | None = None
    char_end: int | None = None
    score: float | None = None
    # sql provenance
    sql: str | None = None
    tables: list[str] = Field(default_factory=list)
    columns: list[str] = Field(default_factory=list)
    rows: list[list[Any]] = Field(default_factory=list)  # the rows shown (at most SQL_ROWS_SHOWN)
    row_count: int | None = None
    truncated: bool = False
    result_hash: str | None = None

    def label(self) -> str:
        """A short human label for references: 'docs/a.md § Costs, p.3' or 'SQL on llm_projects'."""
        if self.kind == "sql":
            return "SQL on " + (", ".join(self.tables) or "the warehouse")
        parts = [self.title or self.source or "document"]
        if self.section:
            parts.append(f"§ {self.section}")
        if self.page:
            parts.append(f"p.{self.page}")
        return ", ".join(parts)


Needs = Literal["documents", "tables", "both"]
StopReason = Literal["covered", "max_rounds", "token_budget", "time_budget", "cost_budget", "no_progress"]

# Rich display hooks, by format ("html", "markdown"). This layer cannot import the renderers, so
# dossier registers them when it is imported; while empty, Jupyter falls back to the plain repr.
_RENDERERS: dict[str, Callable[[Report], str]] = {}


class SubQuestion(BaseModel):
    id: str = Field(description="Short id, q1..q8.")
    question: str = Field(description="A self-contained sub-question.")
    needs: Needs = Field("both", description="Which evidence answers it: documents, tables or both.")
    tables: list[str] = Field(default_factory=list, description="Tables it expects to query.")
    columns: list[str] = Field(default_factory=list, description="Columns it expects to use.")
    queries: list[str] = Field(default_factory=list, description="Search queries to try first.")


class Plan(BaseModel):
    question: str
    language: str = "en"
    sub_questions: list[SubQuestion]
    rationale: str = ""


class ToolCall(BaseModel):
    tool: str
    arguments: dict[str, Any]
    ok: bool
    summary: str  # what the agent was told (an error message when ok is False)
    evidence_ids: list[str] = Field(default_factory=list)


class Finding(BaseModel):
    """What one research branch found for one sub-question in one round."""

    sub_question_id: str
    round: int
    evidence_ids: list[str] = Field(default_factory=list)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    notes: str = ""


class Gap(BaseModel):
    sub_question_id: str
    description: str
    follow_up_queries: list[str] = Field(default_factory=list)
    follow_up_sql: list[str] = Field(default_factory=list)


class Contradiction(BaseModel):
    description: str
    evidence_ids: list[str]


class Reflection(BaseModel):
    covered: dict[str, bool] = Field(description="sub-question id -> answered by the evidence")
    gaps: list[Gap] = Field(default_factory=list)
    contradictions: list[Contradiction] = Field(default_factory=list)


class SectionPlan(BaseModel):
    id: str
    title: str
    goal: str = ""
    sub_question_ids: list[str] = Field(default_factory=list)
    evidence_ids: list[str] = Field(default_factory=list)


class Outline(BaseModel):
    title: str
    sections: list[SectionPlan]


class Section(BaseModel):
    id: str
    title: str
    markdown: str  # body with [ev:ID] markers, before resolution
    order: int = 0


class Verification(BaseModel):
    markers_total: int = 0
    markers_resolved: int = 0
    unknown_markers_removed: int = 0
    unknown_marker_ids: list[str] = Field(default_factory=list)
    numeric_claims: int = 0
    numeric_claims_supported: int = 0
    flagged_claims: list[str] = Field(default_factory=list)
    sentences: int = 0
    uncited_sentences: int = 0


class Reference(BaseModel):
    number: int
    evidence_id: str
    label: str


class Usage(BaseModel):
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None

    def add(self, other: Usage) -> Usage:
        both_unknown = self.cost_usd is None and other.cost_usd is None
        cost = None if both_unknown else (self.cost_usd or 0) + (other.cost_usd or 0)
        return Usage(
            llm_calls=self.llm_calls + other.llm_calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens, cost_usd=cost,
        )


class Report(BaseModel):
    run_id: str
    question: str
    language: str
    title: str
    plan: Plan
    sections: list[Section]  # markers resolved to [n] citations, unknown ones removed
    references: list[Reference]
    evidence: list[Evidence]  # every piece gathered, cited or not
    gaps: list[Gap] = Field(default_factory=list)
    contradictions: list[Contradiction] = Field(default_factory=list)
    stop_reason: StopReason
    rounds: int
    engine: str
    models: dict[str, str] = Field(default_factory=dict)
    failures: list[str] = Field(default_factory=list)  # LLM faults and fallbacks, in order
    llm_notes: list[str] = Field(default_factory=list)  # per step: structured-output method, retries, re-asks (tallied)
    settings_hash: str
    kb_version: dict[str, Any] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    timings: dict[str, float] = Field(default_factory=dict)  # seconds per stage
    verification: Verification = Field(default_factory=Verification)
    created_at: str

    def evidence_by_id(self) -> dict[str, Evidence]:
        return {e.id: e for e in self.evidence}

    def _repr_html_(self) -> str | None:
        render = _RENDERERS.get("html")
        return render(self) if render else None

    def _repr_markdown_(self) -> str | None:
        render = _RENDERERS.get("markdown")
        return render(self) if render else None
