"""What the HTML and PDF renderers share: labels, section Markdown split into blocks with citation
placeholders, table cell text, evidence source lines and the method appendix's facts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from agents.verify import FLAG
from dossier.charts import Chart, charts_for, place_charts
from dossier.render import LABELS as MD_LABELS
from tools.vocabulary import Evidence, Report, Section

CITE_RE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
MARK_RE = re.compile("\ue000([\\d,]+)\ue001|\ue002")  # citation / unverified placeholders
LABELS = {
    "en": {"contents": "Contents", "method": "Appendix: Method", "unverified": "unverified",
           "rows_shown": "{shown} of {total} rows shown", "chars": "chars", "generated": "Generated",
           "evidence_fmt": "{cited} cited of {gathered} gathered", "usage_fmt": "{calls} calls, {tokens} tokens"},
    "zh": {"contents": "目录", "method": "附录：方法", "unverified": "未核实",
           "rows_shown": "显示 {shown} / {total} 行", "chars": "字符", "generated": "生成于",
           "evidence_fmt": "引用 {cited} / 收集 {gathered}", "usage_fmt": "{calls} 次调用，{tokens} 个 token"},
}
FACTS = {
    "en": ["Engine", "Models", "Rounds", "Stop rule", "Evidence", "Citations resolved", "Unknown markers removed",
           "Numeric claims supported", "Uncited sentences", "Knowledge base", "Settings", "Run", "LLM usage",
           "Timings (s)", "Flagged numeric claims", "Failures", "Gaps that remained", "Contradictions",
           "LLM calls"],
    "zh": ["引擎", "模型", "研究轮数", "停止规则", "证据", "已解析引用", "移除的未知标记", "有依据的数字陈述",
           "无引用的句子", "知识库", "设置", "运行", "LLM 用量", "耗时（秒）", "未核实的数字陈述", "故障",
           "尚未解决的问题", "相互矛盾之处", "LLM 调用"],
}


def labels(language: str) -> dict[str, str]:
    return {**MD_LABELS.get(language, MD_LABELS["en"]), **LABELS.get(language, LABELS["en"])}


@dataclass
class Block:
    kind: str  # paragraph, table, bullet_list, ordered_list, heading, fence, ...
    tokens: list[Token]
    cites: set[int]


@lru_cache(maxsize=1)
def markdown_parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table").disable(["image", "link", "autolink"])


def section_blocks(markdown: str, numbers: set[int]) -> list[Block]:
    """Top-level blocks, with citations to known references and unverified flags as placeholders."""
    text = re.sub("[\ue000-\ue002]", "", markdown).replace(FLAG, "\ue002")
    text = CITE_RE.sub(lambda m: _placeholder(m, numbers), text)
    blocks: list[Block] = []
    for token in markdown_parser().parse(text):
        if token.level == 0 and token.nesting >= 0 and (not blocks or _closed(blocks[-1])):
            blocks.append(Block(kind=token.type.removesuffix("_open"), tokens=[], cites=set()))
        blocks[-1].tokens.append(token)
        if token.type == "inline":
            blocks[-1].cites |= {int(n) for found in MARK_RE.findall(token.content) for n in found.split(",") if n}
    return blocks


def _placeholder(m: re.Match[str], numbers: set[int]) -> str:
    cited = [int(n) for n in re.findall(r"\d+", m.group(1))]
    return f"\ue000{','.join(map(str, cited))}\ue001" if all(n in numbers for n in cited) else m.group()


def _closed(block: Block) -> bool:
    return block.tokens[0].nesting == 0 or (block.tokens[-1].nesting == -1 and block.tokens[-1].level == 0)


def replace_marks(text: str, cite: Callable[[list[int]], str], flag: str) -> str:
    return MARK_RE.sub(lambda m: cite([int(n) for n in m.group(1).split(",")]) if m.group(1) else flag, text)


def method_facts(report: Report) -> list[tuple[str, str]]:
    names, t = FACTS.get(report.language, FACTS["en"]), labels(report.language)
    v, kb, u = report.verification, report.kb_version, report.usage
    tokens = f"{u.prompt_tokens} + {u.completion_tokens}"
    values = [
        report.engine, ", ".join(f"{r}: {m}" for r, m in report.models.items()) or "—", str(report.rounds),
        report.stop_reason, t["evidence_fmt"].format(cited=len(report.references), gathered=len(report.evidence)),
        f"{v.markers_resolved} / {v.markers_total}",
        f"{v.unknown_markers_removed}" + (f" ({', '.join(v.unknown_marker_ids)})" if v.unknown_marker_ids else ""),
        f"{v.numeric_claims_supported} / {v.numeric_claims}", f"{v.uncited_sentences} / {v.sentences}",
        ", ".join(f"{k} {val}" for k, val in kb.items()) or "—", report.settings_hash,
        f"{report.run_id} · {report.created_at}",
        t["usage_fmt"].format(calls=u.llm_calls, tokens=tokens)
        + (f", ${u.cost_usd:.4f}" if u.cost_usd is not None else "") if u.llm_calls else "—",
        ", ".join(f"{k} {s:.2f}" for k, s in report.timings.items()) or "—",
    ]
    return list(zip(names, values))


def method_lists(report: Report) -> list[tuple[str, list[str]]]:
    names = FACTS.get(report.language, FACTS["en"])[14:]  # after the 14 facts of method_facts
    items = [report.verification.flagged_claims, report.failures, [g.description for g in report.gaps],
             [c.description for c in report.contradictions], report.llm_notes]
    return [(name, found) for name, found in zip(names, items) if found]


def cell_text(value: Any) -> str:
    """A table cell: 740000.0 as 740000, 4.666667 as 4.66667, no exponents, midnight dropped from datetimes."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        short = f"{value:.6g}"
        return f"{value:.2f}" if "e" in short and abs(value) >= 1 else short
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        value = value.date()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


Placed = list[tuple[Block, list[Chart]]]  # a section's blocks, each with the charts that follow it


def laid_out(report: Report, numbers: set[int], *, png: bool = False) -> list[tuple[Section, Placed]]:
    """Each section with its blocks, each block with the charts placed after it: the body every
    renderer walks (charts as SVG for HTML, as PNG for PDF and DOCX)."""
    blocks = [section_blocks(s.markdown, numbers) for s in report.sections]
    slots = place_charts([[(b.kind, b.cites) for b in bs] for bs in blocks], charts_for(report, png=png))
    return [(section, [(b, slots.get((i, j), [])) for j, b in enumerate(bs)])
            for i, (section, bs) in enumerate(zip(report.sections, blocks))]


def created_datetime(created_at: str) -> dt.datetime:
    """The report's creation time for file metadata (PDF, DOCX): UTC where the stamp names no zone,
    now where it cannot be read."""
    try:
        stamp = dt.datetime.fromisoformat(created_at)
    except ValueError:
        return dt.datetime.now(dt.UTC)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def when(created_at: str) -> str:
    try:
        return dt.datetime.fromisoformat(created_at).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return created_at


def source_line(ev: Evidence, t: dict[str, str]) -> str:
    if ev.kind == "sql":
        return f"{', '.join(ev.tables)} · {ev.row_count} {t['row' if ev.row_count == 1 else 'rows']} · ev:{ev.id}"
    parts = [ev.source or ev.doc_id or "", f"p.{ev.page}" if ev.page else "", f"§ {ev.section}" if ev.section else "",
             f"{t['chars']} {ev.char_start}-{ev.char_end}" if ev.char_start is not None else "", f"ev:{ev.id}"]
    return " · ".join(p for p in parts if p)
