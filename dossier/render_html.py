"""Render a Report as one self-contained HTML file: inline CSS, inline SVG charts, no fetches.

Every citation ``[n]`` links to its reference and carries the cited passage (or the SQL and its
rows) in a tooltip shown on hover or keyboard focus, in plain CSS. Everything that comes from
documents or tables is escaped; Markdown is rendered without raw HTML, links or images, so a
hostile passage can neither run script nor make the page fetch anything.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from dossier.charts import Chart
from dossier.fonts import cjk_subset_woff, wide_chars
from dossier.ref_links import RefLinks
from dossier.render import body_rows
from dossier.report_parts import (
    CITE_RE,
    Block,
    cell_text,
    labels,
    laid_out,
    markdown_parser,
    method_facts,
    method_lists,
    replace_marks,
    source_line,
    when,
)
from tools.vocabulary import _RENDERERS, Evidence, Report

TIP_CHARS, TIP_ROWS = 600, 8


def render_html(report: Report, *, output: Path | None = None, kb_dir: Path | None = None,
                sources_root: Path | None = None) -> str:
    """The report as one HTML page. ``output``, ``kb_dir`` and ``sources_root`` give references their
    links, as in ``dossier.render.render_markdown``."""
    t = labels(report.language)
    links = RefLinks.for_output(output, kb_dir=kb_dir, sources_root=sources_root)
    by_id = report.evidence_by_id()
    refs = {r.number: (r, by_id.get(r.evidence_id)) for r in report.references}
    tips = {n: _tip(ev, t) if ev else "" for n, (_, ev) in refs.items()}
    cite = lambda ns: "[" + ", ".join(_cite(n, tips) for n in ns) + "]"  # noqa: E731
    flag = f' <span class="unverified" title="{t["unverified"]}">⚠ {t["unverified"]}</span>'
    body = [_header(report, t)]
    for i, (section, placed) in enumerate(laid_out(report, set(refs))):
        html = "".join(_block(b, cite, flag) + _figures(charts, cite) for b, charts in placed)
        body.append(f'<section id="sec-{i + 1}"{" class=summary" if i == 0 else ""}>'
                    f"<h2>{escape(section.title)}</h2>{html}</section>")
        if i == 0:
            body.append(_toc(report, t))
    body += [_references(report, refs, t, links), _method(report, t)]
    return _page(report, "\n".join(body))


def _block(block: Block, cite: Callable[[list[int]], str], flag: str) -> str:
    parser = markdown_parser()
    html = parser.renderer.render(block.tokens, parser.options, {})
    if block.kind == "table":
        html = f'<div class="table-wrap">{html}</div>'
    return replace_marks(html, cite, flag)


def _cite(n: int, tips: dict[int, str]) -> str:
    return f'<span class="cref"><a href="#ref-{n}">{n}</a>{tips.get(n, "")}</span>'


def _tip(ev: Evidence, t: dict[str, str]) -> str:
    head = f'<span class="tip-h">{escape(ev.label())}</span><span class="tip-src">{escape(source_line(ev, t))}</span>'
    if ev.kind == "sql":
        rows = "".join(f'<span class="gr">{"".join(f"<span>{escape(cell_text(v))}</span>" for v in row)}</span>'
                       for row in ev.rows[:TIP_ROWS])
        header = "".join(f"<span>{escape(c)}</span>" for c in ev.columns)
        body = (f'<code class="tip-sql">{escape(ev.sql or "")}</code>'
                f'<span class="grid"><span class="gr gh">{header}</span>{rows}</span>')
    else:
        text = " ".join(ev.text.split())
        body = f'<span class="tip-q">{escape(text[:TIP_CHARS])}{"…" if len(text) > TIP_CHARS else ""}</span>'
    return f'<span class="tip" role="tooltip">{head}{body}</span>'


def _figures(charts: list[Chart], cite: Callable[[list[int]], str]) -> str:
    out = []
    for chart in charts:
        caption = CITE_RE.sub(lambda m: cite([int(n) for n in re.findall(r"\d+", m.group(1))]), escape(chart.caption))
        out.append(f'<figure class="chart" id="fig-{chart.evidence_id}" data-evidence="{escape(chart.evidence_id)}">'
                   f"{chart.svg}<figcaption>{caption}</figcaption></figure>")
    return "".join(out)


def _header(report: Report, t: dict[str, str]) -> str:
    meta = f"{t['generated']} {when(report.created_at)} · {report.engine} · run {report.run_id}"
    return (f"<header><h1>{escape(report.title)}</h1><p class=question><strong>{escape(t['question'])}:</strong> "
            f"{escape(report.question)}</p><p class=meta>{escape(meta)}</p></header>")


def _toc(report: Report, t: dict[str, str]) -> str:
    items = [f'<li><a href="#sec-{i + 1}">{escape(s.title)}</a></li>' for i, s in enumerate(report.sections)]
    items += [f'<li><a href="#references">{t["references"]}</a></li>', f'<li><a href="#method">{t["method"]}</a></li>']
    return f'<nav class="toc" aria-label="{t["contents"]}"><h2>{t["contents"]}</h2><ol>{"".join(items)}</ol></nav>'


def _references(report: Report, refs: dict[int, tuple[Any, Evidence | None]], t: dict[str, str],
                links: RefLinks) -> str:
    items, shown = [], body_rows(report)
    for n, (ref, ev) in sorted(refs.items()):
        items.append(f'<li id="ref-{n}" value="{n}"><p class="ref-label"><strong>{escape(ref.label)}</strong></p>'
                     + (_evidence_body(ev, t, shown.get(ev.id, 0), links) if ev else "") + "</li>")
    return f'<section id="references"><h2>{t["references"]}</h2><ol class="refs">{"".join(items)}</ol></section>'


def _evidence_body(ev: Evidence, t: dict[str, str], in_body: int = 0, links: RefLinks | None = None) -> str:
    """A passage in full, its file linked; a SQL result's query with the command that runs it again,
    and its rows unless the body's table shows them (the rows a body table left out follow, so each
    row is shown once)."""
    links = links or RefLinks()
    src = f'<p class="ref-src">{_source_html(ev, t, links)}</p>'
    if ev.kind != "sql":
        return src + f'<blockquote class="passage">{escape(ev.text.strip())}</blockquote>'
    sql = f'<pre class="sql"><code>{escape(ev.sql or "")}</code></pre>'
    if command := links.sql_command(ev):
        sql += f'<p class="rerun">{escape(t["rerun"])}: <code>{escape(command)}</code></p>'
    if in_body and in_body >= len(ev.rows):
        return src + sql + f'<p class="note">{escape(t["in_body"])}</p>'
    if in_body:
        rest = t["rest"].format(a=in_body + 1, b=len(ev.rows), k=in_body)
        sql += f'<p class="note">{escape(rest)}</p>'
    head = "".join(f"<th>{escape(c)}</th>" for c in ev.columns)
    rows = "".join("<tr>" + "".join(f"<td>{escape(cell_text(v))}</td>" for v in row) + "</tr>"
                   for row in ev.rows[in_body:])
    note = ""
    if ev.row_count is not None and (ev.row_count > len(ev.rows) or ev.truncated):
        total = f"{ev.row_count}{'+' if ev.truncated else ''}"
        note = f'<p class="note">{escape(t["rows_shown"].format(shown=len(ev.rows), total=total))}</p>'
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return src + sql + f'<div class="table-wrap">{table}</div>{note}'


def _source_html(ev: Evidence, t: dict[str, str], links: RefLinks) -> str:
    line, href = source_line(ev, t), links.file_href(ev)
    if not href or not ev.source or not line.startswith(ev.source):
        return escape(line)
    return f'<a class="src-link" href="{escape(href)}">{escape(ev.source)}</a>{escape(line[len(ev.source):])}'


def _method(report: Report, t: dict[str, str]) -> str:
    facts = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in method_facts(report))
    plan = "".join(f"<li>{escape(sq.question)} <span class=needs>{escape(sq.needs)}</span></li>"
                   for sq in report.plan.sub_questions)
    lists = "".join(f"<h3>{escape(name)}</h3><ul>{''.join(f'<li>{escape(x)}</li>' for x in items)}</ul>"
                    for name, items in method_lists(report))
    return (f'<section id="method" class="appendix"><h2>{t["method"]}</h2><h3>{t["plan"]}</h3><ol>{plan}</ol>'
            f'<table class="facts"><tbody>{facts}</tbody></table>{lists}</section>')


def _page(report: Report, body: str) -> str:
    lang = escape(report.language or "en")
    return (f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="dossier">\n<title>{escape(report.title)}</title>\n'
            f"<style>{_font_face(body)}{CSS}</style>\n</head>\n<body>\n"
            f"<article class=\"dossier\" lang=\"{lang}\">\n{body}\n</article>\n"
            f"<script>{JS}</script>\n</body>\n</html>\n")


def _font_face(body: str) -> str:
    """The PDF's CJK font, cut down to the characters the page shows, embedded, when it shows any:
    Chinese then reads on a machine without a CJK font, and an English report stays small. The
    face keeps the font's own name, which the CSS stacks and the charts' SVG text already list."""
    found = cjk_subset_woff(wide_chars(body))
    if found is None:
        return ""
    family, woff = found
    data = base64.b64encode(woff).decode("ascii")
    return f'@font-face{{font-family:"{family}";src:url(data:font/woff;base64,{data}) format("woff")}}\n'


# Scoped under .dossier so that the same markup can sit inside a Jupyter output cell.
CSS = """
.dossier{--ink:#1d232b;--muted:#5d6875;--line:#dde2e8;--accent:#2f6690;--soft:#f5f7fa;
 font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","PingFang SC",
 "Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei",sans-serif;
 color:var(--ink);line-height:1.6;max-width:48rem;margin:0 auto;padding:2rem 1.25rem 4rem;font-size:16px}
.dossier:lang(zh){font-family:"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",
 "Source Han Sans SC","WenQuanYi Micro Hei",system-ui,sans-serif;line-height:1.8}
.dossier h1{font-size:1.9rem;line-height:1.25;margin:0 0 .6rem}
.dossier h2{font-size:1.3rem;margin:2.2rem 0 .7rem;padding-bottom:.25rem;border-bottom:1px solid var(--line)}
.dossier h3{font-size:1.02rem;margin:1.4rem 0 .4rem}
.dossier .question{font-size:1.05rem;margin:.2rem 0}.dossier .meta{color:var(--muted);font-size:.82rem}
.dossier .summary{background:var(--soft);border-left:4px solid var(--accent);padding:.2rem 1.2rem .6rem;
 margin-top:1.5rem}
.dossier .summary h2{border:0}
.dossier .toc ol{columns:2;column-gap:2rem;padding-left:1.3rem}.dossier .toc li{break-inside:avoid}
.dossier a{color:var(--accent);text-decoration:none}.dossier a:hover{text-decoration:underline}
.dossier .table-wrap{overflow-x:auto;margin:.8rem 0}
.dossier table{border-collapse:collapse;font-size:.85rem;font-variant-numeric:tabular-nums}
.dossier th,.dossier td{border-bottom:1px solid var(--line);padding:.3rem .6rem;text-align:left;vertical-align:top}
.dossier thead th{background:var(--soft);border-bottom:2px solid #c5ccd5}
.dossier code,.dossier pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;
 font-size:.82em}
.dossier pre.sql{background:var(--soft);padding:.6rem .8rem;white-space:pre-wrap;word-break:break-word;
 border-radius:4px}
.dossier .cref{position:relative;display:inline}.dossier .cref>a{font-size:.85em;padding:0 .05em}
.dossier .tip{display:none;position:absolute;left:0;top:1.5em;z-index:20;width:min(28rem,86vw);max-height:22rem;
 overflow:auto;background:#fff;color:var(--ink);border:1px solid #c5ccd5;border-radius:6px;padding:.55rem .7rem;
 box-shadow:0 6px 22px rgba(20,30,45,.18);font-size:.8rem;line-height:1.45;font-weight:normal;text-align:left}
.dossier .cref:hover>.tip,.dossier .cref:focus-within>.tip{display:block}
.dossier .tip-h{display:block;font-weight:600}.dossier .tip-src{display:block;color:var(--muted);margin-bottom:.3rem}
.dossier .tip-q{display:block;white-space:normal}
.dossier .tip-sql{display:block;white-space:pre-wrap;word-break:break-word;background:var(--soft);padding:.3rem;
 margin-bottom:.3rem}
.dossier .grid{display:table;border-collapse:collapse}.dossier .gr{display:table-row}
.dossier .gr>span{display:table-cell;padding:.1rem .45rem;border-bottom:1px solid var(--line)}
 .dossier .gh>span{font-weight:600}
.dossier .unverified{display:inline-block;background:#fff4d6;color:#8a4b00;border:1px solid #e8b34b;border-radius:3px;
 padding:0 .35em;font-size:.75em;font-weight:600;line-height:1.4;white-space:nowrap}
.dossier figure.chart{margin:1.2rem 0;padding:.6rem;border:1px solid var(--line);border-radius:6px;break-inside:avoid}
.dossier figure.chart svg{display:block;width:100%;height:auto}
.dossier figcaption{font-size:.85rem;color:var(--muted);margin-top:.3rem}
.dossier .refs{padding-left:1.6rem;font-size:.9rem}.dossier .refs>li{margin-bottom:1rem}
.dossier .refs>li:target{background:#fff8e1;outline:3px solid #fff8e1}
.dossier .ref-label{margin:0}
 .dossier .ref-src{margin:.1rem 0 .3rem;color:var(--muted);font-size:.8rem;word-break:break-word}
.dossier .rerun{margin:.2rem 0 .4rem;color:var(--muted);font-size:.8rem}
.dossier .rerun code{white-space:pre-wrap;word-break:break-all;color:var(--ink)}
.dossier blockquote.passage{margin:.3rem 0;padding:.2rem .8rem;border-left:3px solid var(--line);white-space:pre-line;
 color:#36404c}
.dossier .note{color:var(--muted);font-size:.8rem}.dossier .needs{color:var(--muted);font-size:.8rem}
.dossier .facts th{width:13rem;background:none;font-weight:600}
@media print{
 @page{size:A4;margin:16mm 15mm}
 .dossier{max-width:none;padding:0;font-size:10.5pt}.dossier .tip{display:none!important}
 .dossier a{color:inherit}.dossier .toc{break-after:page}
 .dossier h2,.dossier h3{break-after:avoid}
 .dossier table,.dossier pre,.dossier blockquote,.dossier figure{break-inside:avoid}
 .dossier .table-wrap{overflow:visible}.dossier .summary{background:none}
 .dossier table{font-size:8pt}.dossier th{overflow-wrap:anywhere}.dossier pre.sql{font-size:7.5pt}
}"""
# Keep a tooltip inside the window: shift it left when it would overflow on the right.
JS = """document.querySelectorAll('.dossier .cref').forEach(function(c){['mouseenter','focusin'].forEach(function(e){
c.addEventListener(e,function(){var t=c.querySelector('.tip');if(!t)return;t.style.left='0';
var r=t.getBoundingClientRect();
if(r.right>window.innerWidth-8){t.style.left=(window.innerWidth-8-r.right)+'px';}});});});"""

_RENDERERS["html"] = render_html  # Report._repr_html_ in Jupyter
