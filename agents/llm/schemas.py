"""Structured-output schemas the LLM fills; converted to the run's records after validation.

They differ from the vocabulary's Plan/SubQuestion/Outline on purpose: they hold only what the model
decides, never the ids, round numbers and evidence the run assigns, so a model cannot forge them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tools.vocabulary import Needs


class PlannedSubQuestion(BaseModel):
    question: str = Field(description="A self-contained sub-question.")
    needs: Needs = Field(description="documents, tables or both")
    tables: list[str] = Field(default_factory=list, description="Catalog tables it expects to query.")
    columns: list[str] = Field(default_factory=list, description="Columns it expects to use.")
    queries: list[str] = Field(default_factory=list, description="1-3 search queries.")


class ResearchPlan(BaseModel):
    """The research plan."""

    sub_questions: list[PlannedSubQuestion]
    rationale: str = Field("", description="One line on how the question was split.")


class SubQuestionReview(BaseModel):
    sub_question_id: str
    answered: bool
    gap: str = Field("", description="What is missing, when not answered.")
    follow_up_queries: list[str] = Field(default_factory=list)
    follow_up_sql: list[str] = Field(default_factory=list)


class ReportedContradiction(BaseModel):
    description: str
    evidence_ids: list[str]


class EvidenceReview(BaseModel):
    """The review of the evidence gathered so far."""

    reviews: list[SubQuestionReview]
    contradictions: list[ReportedContradiction] = Field(default_factory=list)


class PlannedSection(BaseModel):
    title: str
    goal: str = ""
    sub_question_ids: list[str] = Field(default_factory=list)
    evidence_ids: list[str] = Field(default_factory=list)


class ReportOutline(BaseModel):
    """The report outline."""

    title: str
    sections: list[PlannedSection]


# The research tools' schemas derive from the Toolbox methods themselves: see agents/llm/tools.py.
