"""What one role call records besides its result: token usage, failures and tool calls."""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.vocabulary import ToolCall, Usage


@dataclass
class Trace:
    """Created per node invocation and handed to the engine, so concurrent branches never share one."""

    usage: Usage = field(default_factory=Usage)
    failures: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    # Recoveries inside the LLM engine that are no failure (the run stays on the LLM engine), e.g. a
    # research branch that ran its planned queries because the model made no tool call.
    fallbacks: list[str] = field(default_factory=list)
    engine_used: str = ""
    llm_notes: list[str] = field(default_factory=list)  # structured-output method per step, retries, re-asks

    def add_usage(self, *, prompt_tokens: int = 0, completion_tokens: int = 0, cost_usd: float | None = None) -> None:
        self.usage = self.usage.add(
            Usage(llm_calls=1, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost_usd)
        )
