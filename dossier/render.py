"""Render a Report to Markdown: sections with numbered citations, references, SQL evidence, method."""

from __future__ import annotations

from tools.evidence import Evidence
from tools.research_models import _RENDERERS, Report

LABELS = {
    "en": {"question": "Question", "references": "References", "method": "Method", "plan": "Plan",
           "gaps": "Gaps that remained", "query": "Query", "rows": "rows", "row": "row"},
    "zh": {"question": "问题", "references": "参考资料", "method": "方法", "plan": "研究计划",
           "gaps": "尚未解决的问题", "query": "查询", "rows": "行", "row": "行"},
}
MAX_TABLE_ROWS = 10


def render_markdown(report: Report) -> str:
    t = LABELS.get(report.language, LABELS["en"])
    parts = [f"# {report.title}", f"**{t['question']}:** {report.question}"]
    parts += [f"## {s.title}\n\n{s.markdown.strip()}" for s in report.sections]
    parts.append(_references(report, t))
    parts.append(_method(report, t))
    return "\n\n".join(parts).rstrip() + "\n"


def _references(report: Report, t: dict[str, str]) -> str:
    by_id = report.evidence_by_id()
    lines = [f"## {t['references']}", ""]
    for ref in report.references:
        ev = by_id.get(ref.evidence_id)
        lines.append(f"{ref.number}. {_reference_body(ev, t) if ev else ref.label} `[ev:{ref.evidence_id}]`")
    return "\n".join(lines)


def _reference_body(ev: Evidence, t: dict[str, str]) -> str:
    if ev.kind == "sql":
        table = sql_table(ev)
        return f"{ev.label()} — {ev.row_count} {t['row' if ev.row_count == 1 else 'rows']}\n\n   ```sql\n   {ev.sql}\n   ```\n\n{_indent(table)}\n"
    where = ev.source or ""
    where += f", p.{ev.page}" if ev.page else ""
    snippet = " ".join(ev.text.split())[:240]
    return f"{ev.label()} ({where}, chars {ev.char_start}-{ev.char_end}): “{snippet}…”"


def sql_table(ev: Evidence, max_rows: int = MAX_TABLE_ROWS) -> str:
    if not ev.columns:
        return ""
    head = "| " + " | ".join(ev.columns) + " |"
    rule = "|" + "---|" * len(ev.columns)
    body = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in ev.rows[:max_rows]]
    return "\n".join([head, rule, *body])


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.splitlines())


def _method(report: Report, t: dict[str, str]) -> str:
    v = report.verification
    lines = [f"## {t['method']}", ""]
    lines.append(f"- Engine: {report.engine}" + (f" (models: {_models(report)})" if report.models else ""))
    lines.append(f"- Rounds: {report.rounds}; stop rule: **{report.stop_reason}**")
    lines.append(f"- Evidence gathered: {len(report.evidence)}; cited: {len(report.references)}")
    lines.append(
        f"- Citations: {v.markers_resolved}/{v.markers_total} markers resolved, {v.unknown_markers_removed} "
        f"unknown removed; numeric claims {v.numeric_claims_supported}/{v.numeric_claims} supported; "
        f"uncited sentences {v.uncited_sentences}/{v.sentences}"
    )
    kb = report.kb_version
    lines.append(f"- Knowledge base: corpus v{kb.get('corpus_version')}, catalog {kb.get('catalog_hash')}, "
                 f"embedder {kb.get('embedder')}; settings {report.settings_hash}; run `{report.run_id}`")
    if report.usage.llm_calls:
        u = report.usage
        cost = f", ${u.cost_usd:.4f}" if u.cost_usd is not None else ""
        lines.append(f"- LLM usage: {u.llm_calls} calls, {u.prompt_tokens} prompt + {u.completion_tokens} completion tokens{cost}")
    lines += [f"- Failure: {f}" for f in report.failures]
    lines.append("- Timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in report.timings.items()))
    lines += ["", f"### {t['plan']}", ""]
    lines += [f"{i}. {sq.question} _({sq.needs})_" for i, sq in enumerate(report.plan.sub_questions, 1)]
    if report.gaps:
        lines += ["", f"### {t['gaps']}", ""] + [f"- {g.description}" for g in report.gaps]
    return "\n".join(lines)


def _models(report: Report) -> str:
    return ", ".join(f"{role}={name}" for role, name in report.models.items())


_RENDERERS["markdown"] = render_markdown  # Report._repr_markdown_ in Jupyter
