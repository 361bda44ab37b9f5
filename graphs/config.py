"""Settings for the research loop: rounds, fan-out and the budgets that stop a run."""

from __future__ import annotations

from pydantic import Field

from agents.config import EngineSettings


class ResearchSettings(EngineSettings):
    max_rounds: int = Field(3, ge=1, le=10, description="Research → reflect rounds before writing.")
    max_sub_questions: int = Field(6, ge=2, le=8, description="Sub-questions the plan may have.")
    branch_concurrency: int = Field(4, ge=1, le=32, description="Research branches running at once.")
    token_budget: int | None = Field(None, ge=1000, description="Stop researching past this many LLM tokens.")
    time_budget_s: float | None = Field(None, gt=0, description="Stop researching after this many seconds.")
    cost_budget_usd: float | None = Field(None, gt=0, description="Stop researching past this cost (USD).")
    tool_search_k: int = Field(6, ge=1, le=50, description="Passages per search_documents call.")
