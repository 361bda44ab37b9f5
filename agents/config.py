"""Settings for the engines: which one runs, and how the LLM engine reaches its endpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from tools.config import KBSettings


class EngineSettings(KBSettings):
    engine: Literal["auto", "offline", "llm"] = Field(
        "auto", description="auto: the LLM engine when a base URL or API key is set, else offline."
    )
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.")
    api_key: SecretStr | None = Field(None, description="API key for the endpoint (never logged or stored).")
    model_fast: str = Field("gpt-4o-mini", min_length=1, description="Model for planning, research, reflection.")
    model_strong: str = Field("gpt-4o", min_length=1, description="Model for outlining and writing.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature for every role.")
    llm_timeout_s: float = Field(60.0, gt=0, le=600, description="Seconds before one LLM request times out.")
    llm_max_retries: int = Field(3, ge=0, le=10, description="Retries on 429/5xx/timeouts, with backoff.")
    llm_concurrency: int = Field(4, ge=1, le=64, description="LLM requests in flight at once, per run.")
    max_tool_steps: int = Field(6, ge=1, le=30, description="Tool-calling turns per research branch.")
    price_per_1k_prompt_usd: float | None = Field(
        None, ge=0, description="Price of 1,000 prompt tokens, to compute cost and enforce cost_budget_usd."
    )
    price_per_1k_completion_usd: float | None = Field(
        None, ge=0, description="Price of 1,000 completion tokens (see price_per_1k_prompt_usd)."
    )
    fallback_offline: bool = Field(
        True, description="When the LLM keeps failing, finish the run on the offline engine instead of failing."
    )
    report_language: Literal["auto", "en", "zh"] = Field(
        "auto", description="Report language; auto follows the question's language."
    )

    def uses_llm(self) -> bool:
        if self.engine == "auto":
            return bool(self.base_url or self.api_key)
        return self.engine == "llm"
