"""Fitting prompts into the model's context window: token estimates, per-role budgets, evidence trimming.

Local models often have 4k-8k windows; a prompt that overflows is cut by the server (or refused),
so each role's prompt is sized here: the window minus the role's completion limit minus a margin
for the chat template. Evidence is ranked by relevance to what the prompt asks and added whole,
best first, until the budget is spent; a passage is only ever shortened at a sentence boundary,
and always keeps its ``[ev:ID]`` header, so no citation is cut in half.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from agents.offline.relevance import make_query, relevance
from tools.text.language import CJK_CHAR_CLASS, FULLWIDTH_FORMS
from tools.vocabulary import Evidence

# Completion tokens per role when the settings name none; the client sends agents/config.py's
# ``max_tokens_<role>`` as the request's limit, so the budget reads the same setting.
COMPLETION_DEFAULTS = {"plan": 1024, "research": 512, "reflect": 1024, "outline": 1024, "write": 1500}
TEMPLATE_MARGIN = 0.05  # chat templates, tool schemas and estimate error: a share of the window kept free
TOOL_SCHEMA_TOKENS = 400  # the four tool definitions offered to the research model
PASSAGE_CHARS = 700  # longest passage shown in reflection/outline/write prompts, whatever the window
MIN_PART_TOKENS = 40  # a shortened passage below this says too little to be worth its header
EV_ID = re.compile(r"\[ev:[0-9a-f]{10}\]")
_CJK = re.compile(f"[{CJK_CHAR_CLASS}{FULLWIDTH_FORMS}]")  # a fullwidth form is a token too
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；])\s+|(?<=[。！？；])|\n+")


def estimate_tokens(text: str) -> int:
    """Cheap and a little pessimistic: 4 characters a token, one token per CJK character."""
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def messages_tokens(messages: Iterable[BaseMessage]) -> int:
    return sum(estimate_tokens(m.content if isinstance(m.content, str) else str(m.content)) + 4 for m in messages)


def completion_tokens(settings: Any, role: str) -> int:
    """The role's completion limit: what the client asks the server for (the setting, else the default)."""
    return int(getattr(settings, f"max_tokens_{role}", None) or COMPLETION_DEFAULTS[role])


def prompt_budget(settings: Any, role: str) -> int:
    """Tokens the role's prompt may use: the window less the completion limit and the margin."""
    window = _window(settings)
    extra = TOOL_SCHEMA_TOKENS if role == "research" else 0
    return max(256, window - completion_tokens(settings, role) - int(window * TEMPLATE_MARGIN) - extra)


def _window(settings: Any) -> int:
    return int(getattr(settings, "context_tokens", None) or 8192)


# -- evidence --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fitted:
    text: str
    kept: list[str]  # evidence ids shown, best first
    dropped: list[str]


def rank(evidence: Mapping[str, Evidence], ids: Iterable[str], focus: str) -> list[Evidence]:
    """The evidence, most relevant to ``focus`` first (the given order breaks ties)."""
    query = make_query(focus) if focus.strip() else None
    found = [evidence[i] for i in dict.fromkeys(ids) if i in evidence]
    if query is None:
        return found
    scores = {e.id: relevance(query, e.text if e.kind == "passage" else f"{e.sql}\n{e.text}", e.label())
              for e in found}
    return sorted(found, key=lambda e: -scores[e.id])  # stable: ties keep the caller's order


def fit_evidence(evidence: Mapping[str, Evidence], ids: Iterable[str], *, focus: str, budget: int) -> Fitted:
    """The evidence digest for a prompt: ranked, whole items best first, within ``budget`` tokens."""
    parts, kept, dropped, left = [], [], [], budget
    for ev in rank(evidence, ids, focus):
        header = f"[ev:{ev.id}] {ev.label()}\n"
        body = f"SQL: {ev.sql}\n{ev.text}" if ev.kind == "sql" else cut(ev.text, PASSAGE_CHARS)
        cost = estimate_tokens(header + body) + 1
        if cost > left and ev.kind == "passage" and left - estimate_tokens(header) >= MIN_PART_TOKENS:
            body = cut_tokens(body, left - estimate_tokens(header) - 1)
            cost = estimate_tokens(header + body) + 1
        if body and cost <= left:
            parts.append(header + body)
            kept.append(ev.id)
            left -= cost
        else:
            dropped.append(ev.id)
    return Fitted("\n\n".join(parts) or "(no evidence)", kept, dropped)


def cut(text: str, max_chars: int) -> str:
    """At most ``max_chars`` characters, ending at a sentence (or line) boundary; '' if none fits."""
    if len(text) <= max_chars:
        return text
    ends = [m.start() for m in _SENTENCE_END.finditer(text, 0, max_chars + 1) if m.start() > 0]
    return text[:ends[-1]].rstrip() if ends else ""


def cut_tokens(text: str, max_tokens: int) -> str:
    """The longest sentence-bounded prefix within ``max_tokens``."""
    if estimate_tokens(text) <= max_tokens:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the most characters whose sentence-bounded prefix fits
        mid = (lo + hi + 1) // 2
        if estimate_tokens(cut(text, mid)) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return cut(text, lo)


def fit_lines(lines: list[str], budget: int) -> str:
    """Whole lines, in order, while they fit (a table catalog, a list of sub-questions)."""
    out, left = [], budget
    for line in lines:
        cost = estimate_tokens(line) + 1
        if cost > left:
            break
        out.append(line)
        left -= cost
    return "\n".join(out)


# -- the research conversation ---------------------------------------------------------------------

def fit_messages(messages: list[BaseMessage], budget: int) -> list[BaseMessage]:
    """Shrink the oldest tool results to their evidence ids until the conversation fits.

    The model has read them already; the ids stay, so it can still cite what it found.
    """
    out = list(messages)
    for i, m in enumerate(out[2:], 2):  # the instructions and the task stay whole
        if messages_tokens(out) <= budget:
            break
        if not isinstance(m, AIMessage) and isinstance(m.content, str) and not m.content.startswith("(earlier"):
            ids = " ".join(dict.fromkeys(EV_ID.findall(m.content))) or "none"
            out[i] = m.model_copy(update={"content": f"(earlier result, shortened; evidence: {ids})"})
    return out
