"""The stop rule: coverage, rounds, or a token/time/cost budget, whichever comes first."""

from __future__ import annotations

import time

from tools.vocabulary import Finding, StopReason, Usage


def new_evidence_in_round(findings: list[Finding], round: int) -> int:
    earlier = {e for f in findings if f.round < round for e in f.evidence_ids}
    current = {e for f in findings if f.round == round for e in f.evidence_ids}
    return len(current - earlier)


def decide_stop(
    *, covered: dict[str, bool], round: int, max_rounds: int, usage: Usage, new_evidence: int,
    started_at: float, token_budget: int | None, time_budget_s: float | None, cost_budget_usd: float | None,
    has_follow_ups: bool,
) -> StopReason | None:
    """None means: research the gaps again. The order puts the most informative reason first."""
    if covered and all(covered.values()):
        return "covered"
    if token_budget is not None and usage.prompt_tokens + usage.completion_tokens >= token_budget:
        return "token_budget"
    if cost_budget_usd is not None and (usage.cost_usd or 0.0) >= cost_budget_usd:
        return "cost_budget"
    if time_budget_s is not None and time.time() - started_at >= time_budget_s:
        return "time_budget"
    if round >= max_rounds:
        return "max_rounds"
    if (round > 1 and new_evidence == 0) or not has_follow_ups:
        return "no_progress"
    return None
