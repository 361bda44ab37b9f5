"""Render a Report to Markdown: sections with numbered citations, references, SQL evidence, method."""

from __future__ import annotations

import re
from pathlib import Path

from dossier.ref_links import RefLinks
from dossier.safe_text import link_text, markdown_text, table_cell
from tools.vocabulary import _RENDERERS, Evidence, Report

LABELS = {
    "en": {"question": "Question", "references": "References", "method": "Method", "plan": "Plan",
           "gaps": "Gaps that remained", "query": "Query", "rows": "rows", "row": "row",
           "in_body": "the rows are in the report body", "rest": "rows {a}–{b}; the first {k} are in the report body",
           "rerun": "Re-run"},
    "zh": {"question": "问题", "references": "参考资料", "method": "方法", "plan": "研究计划",
           "gaps": "尚未解决的问题", "query": "查询", "rows": "行", "row": "行",
           "in_body": "结果见正文表格", "rest": "第 {a}–{b} 行；前 {k} 行见正文表格", "rerun": "重新运行"},
}
MAX_TABLE_ROWS = 10
_CITED_RE = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def render_markdown(report: Report, *, output: Path | None = None, kb_dir: Path | None = None,
                    sources_root: Path | None = None) -> str:
    """The report as Markdown. With ``output`` (where the file goes), a passage's reference links
    to its source file, found under ``sources_root`` (default: the working folder); with
    ``kb_dir``, a SQL reference's command to run it again names that knowledge base."""
    t = LABELS.get(report.language, LABELS["en"])
    links = RefLinks.for_output(output, kb_dir=kb_dir, sources_root=sources_root)
    parts = [f"# {markdown_text(report.title)}", f"**{t['question']}:** {markdown_text(report.question)}"]
    parts += [f"## {markdown_text(s.title)}\n\n{markdown_text(s.markdown.strip())}" for s in report.sections]
    parts.append(_references(report, t, links))
    parts.append(_method(report, t))
    return "\n\n".join(parts).rstrip() + "\n"


def _references(report: Report, t: dict[str, str], links: RefLinks | None = None) -> str:
    by_id, shown = report.evidence_by_id(), body_rows(report)
    links = links or RefLinks()
    lines = [f"## {t['references']}", ""]
    for ref in report.references:
        ev = by_id.get(ref.evidence_id)
        body = _reference_body(ev, t, shown.get(ev.id, 0), links) if ev else ref.label
        lines.append(f"{ref.number}. {body} `[ev:{ref.evidence_id}]`")
    return "\n".join(lines)


def _reference_body(ev: Evidence, t: dict[str, str], in_body: int = 0, links: RefLinks | None = None) -> str:
    links = links or RefLinks()
    if ev.kind == "sql":
        sql = f"{ev.label()} — {row_count(ev, t)}\n\n{_indent(fenced(ev.sql or '', 'sql'))}\n"
        if command := links.sql_command(ev):
            sql += f"\n   {t['rerun']}:" + (f" {code_span(command)}\n" if "\n" not in command
                                            else f"\n\n{_indent(fenced(command, 'sh'))}\n")
        rest = ev.model_copy(update={"rows": ev.rows[in_body:]}) if in_body else ev
        if in_body and not rest.rows:
            return f"{sql}\n   _{t['in_body']}_\n"
        note = f"\n   _{t['rest'].format(a=in_body + 1, b=len(ev.rows), k=in_body)}_\n" if in_body else ""
        return f"{sql}{note}\n{_indent(sql_table(rest))}\n"
    where = markdown_text(ev.source or "")
    if (href := links.file_href(ev)) and ev.source:
        where = f"[{link_text(ev.source)}]({href})"
    where += f", p.{ev.page}" if ev.page else ""
    snippet = markdown_text(" ".join(ev.text.split())[:240])
    return f"{markdown_text(ev.label())} ({where}, chars {ev.char_start}-{ev.char_end}): “{snippet}…”"


def fenced(text: str, language: str) -> str:
    """A fenced code block that no run of backticks inside ``text`` can close early."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}{language}\n{text}\n{fence}"


def code_span(text: str) -> str:
    """Inline code for one line of ``text``, whatever backticks it holds."""
    ticks = "`" * (1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def row_count(ev: Evidence, t: dict[str, str]) -> str:
    """'1 row', '4 rows': a label, never a sentence of the report."""
    n = ev.row_count if ev.row_count is not None else len(ev.rows)
    return f"{n} {t['row' if n == 1 else 'rows']}"


def body_rows(report: Report) -> dict[str, int]:
    """Evidence id -> how many of a SQL result's rows a table in the report body already shows:
    a table with the result's columns, citing it in the table or in the paragraph just before."""
    by_number = {r.number: r.evidence_id for r in report.references}
    by_id = report.evidence_by_id()
    shown: dict[str, int] = {}
    for section in report.sections:
        blocks = re.split(r"\n\s*\n", section.markdown.strip())
        for i, block in enumerate(blocks):
            lines = block.strip().splitlines()
            start = next((k for k, line in enumerate(lines) if line.lstrip().startswith("|")), None)
            if start is None:
                continue
            table = lines[start:]
            header = _cells(table[0])
            rows = sum(1 for line in table[2:] if line.lstrip().startswith("|"))
            context = "\n".join(lines[:start] + table + ([blocks[i - 1]] if i and start == 0 else []))
            for n in (int(x) for m in _CITED_RE.findall(context) for x in re.findall(r"\d+", m)):
                ev = by_id.get(by_number.get(n, ""))
                if ev is not None and ev.kind == "sql" and [" ".join(c.split()) for c in ev.columns] == header:
                    shown[ev.id] = max(shown.get(ev.id, 0), rows)
    return shown


def _cells(line: str) -> list[str]:
    return [" ".join(c.replace("\\|", "|").split()) for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def sql_table(ev: Evidence, max_rows: int = MAX_TABLE_ROWS) -> str:
    if not ev.columns:
        return ""
    head = "| " + " | ".join(table_cell(c) for c in ev.columns) + " |"
    rule = "|" + "---|" * len(ev.columns)
    body = ["| " + " | ".join(table_cell(v) for v in row) + " |" for row in ev.rows[:max_rows]]
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
        lines.append(f"- LLM usage: {u.llm_calls} calls, {u.prompt_tokens} prompt + "
                     f"{u.completion_tokens} completion tokens{cost}")
    lines += [f"- Failure: {f}" for f in report.failures]
    lines += [f"- LLM: {n}" for n in report.llm_notes]
    lines.append("- Timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in report.timings.items()))
    lines += ["", f"### {t['plan']}", ""]
    lines += [f"{i}. {sq.question} _({sq.needs})_" for i, sq in enumerate(report.plan.sub_questions, 1)]
    if report.gaps:
        lines += ["", f"### {t['gaps']}", ""] + [f"- {g.description}" for g in report.gaps]
    return "\n".join(lines)


def _models(report: Report) -> str:
    return ", ".join(f"{role}={name}" for role, name in report.models.items())


_RENDERERS["markdown"] = render_markdown  # Report._repr_markdown_ in Jupyter
