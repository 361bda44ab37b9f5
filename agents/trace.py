"""What one role call records besides its result: token usage, failures and tool calls."""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.research_models import ToolCall, Usage


@dataclass
class Trace:
    """Created per node invocation and handed to the engine, so concurrent branches never share one."""

    usage: Usage = field(default_factory=Usage)
    failures: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    engine_used: str = ""

    def add_usage(self, *, prompt_tokens: int = 0, completion_tokens: int = 0, cost_usd: float | None = None) -> None:
        self.usage = self.usage.add(
            Usage(llm_calls=1, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost_usd)
        )
