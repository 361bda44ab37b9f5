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
    llm_timeout_s: float = Field(
        60.0, gt=0, le=600,
        description="Seconds before one LLM request attempt times out (streamed: the wait for each chunk; "
                    "the step's max_tokens bounds the stream's length). Raise it for a slow local model.",
    )
    structured_output: Literal["auto", "json_schema", "json_object", "function_calling", "text"] = Field(
        "auto",
        description="How plan/reflect/outline ask for JSON. auto: try json_schema, json_object (schema in the "
                    "prompt), function_calling, text (JSON parsed and repaired from prose), in that order, and "
                    "remember per endpoint (base URL + model) the first the server accepts.",
    )
    # Completion-token limits, sent as ``max_tokens`` (llama.cpp, llama-cpp-python, vLLM, Ollama, LM Studio
    # and OpenAI's non-reasoning models honour it; OpenAI's o-series/gpt-5 get max_completion_tokens).
    # Without one a small local model may fill its whole context window before it answers.
    max_tokens_plan: int = Field(1024, ge=16, le=32768, description="Completion-token limit of the plan call.")
    max_tokens_research: int = Field(512, ge=16, le=32768, description="Completion-token limit per research turn.")
    max_tokens_reflect: int = Field(1024, ge=16, le=32768, description="Completion-token limit of the reflection.")
    max_tokens_outline: int = Field(1024, ge=16, le=32768, description="Completion-token limit of the outline.")
    max_tokens_write: int = Field(1500, ge=16, le=32768, description="Completion-token limit per written section.")
    llm_max_retries: int = Field(3, ge=0, le=10, description="Retries on 429/5xx/timeouts, with backoff.")
    llm_concurrency: int = Field(4, ge=1, le=64, description="LLM requests in flight at once, per run.")
    max_tool_steps: int = Field(6, ge=1, le=30, description="Tool-calling turns per research branch.")
    context_tokens: int = Field(
        8192, ge=2048, le=2_000_000,
        description="The model's context window in tokens; every prompt is trimmed to fit it (evidence ranked, "
                    "whole items dropped first).",
    )
    tool_choice_first: Literal["auto", "required", "search_documents"] = Field(
        "auto", description="tool_choice on a research branch's first turn: 'search_documents' names the function "
                            "(some servers, e.g. llama-cpp-python's, return tool calls only then), 'required' "
                            "forces some tool; later turns are always 'auto'.",
    )
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
