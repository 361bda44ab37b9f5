"""The HTML report carries its own CJK font: Chinese shows as glyphs, not boxes, in a real browser
on a machine without a CJK font, and an English report embeds nothing."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from dossier.fonts import cjk_font, wide_chars
from dossier.render_html import render_html
from tests.test_render_html import assert_self_contained, handmade_report
from tools.vocabulary import Evidence, Reference, Report, Section

FONT_FACE_RE = re.compile(r'@font-face\{font-family:"([^"]+)";src:url\(data:font/woff;base64,([A-Za-z0-9+/=]+)\)')
PROBE = "检索增强生成和微调"  # nine distinct characters, all in the report below
CELL = 80
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
needs_font = pytest.mark.skipif(cjk_font() is None, reason="no CJK font on this machine (paperang-p2-fonts-cjk)")


def chinese_report() -> Report:
    report = handmade_report("zh")
    passage = "检索增强生成（RAG）的成本为 20 万至 300 万元，团队 5 至 8 人；微调需要 500 万元以上。"
    ev = Evidence(id="zh00000006", kind="passage", text=passage, doc_id="d6", source="docs/成本.md",
                  title="成本说明", section="成本", char_start=0, char_end=len(passage))
    summary = Section(id="s0", title="执行摘要", markdown="- 检索增强生成和微调的成本差别很大 [6]。\n", order=0)
    return report.model_copy(update={
        "title": "检索增强生成和微调的成本", "question": "检索增强生成和微调的成本有什么区别？",
        "sections": [summary, *report.sections[1:]], "evidence": [*report.evidence, ev],
        "references": [*report.references, Reference(number=6, evidence_id=ev.id, label=ev.label())],
    })


def test_english_report_embeds_no_font() -> None:
    html = render_html(handmade_report("en"))
    assert "@font-face" not in html and "base64" not in html


@needs_font
def test_chinese_report_embeds_a_subset_covering_every_character() -> None:
    html = render_html(chinese_report())
    faces = FONT_FACE_RE.findall(html)
    assert len(faces) == 1 and html.count("@font-face") == 1
    family, data = faces[0]
    assert family == "WenQuanYi Micro Hei"  # the name the CSS stacks and the charts' SVG text use
    assert f'"{family}"' in html.split("@font-face", 1)[1]
    woff = base64.b64decode(data)
    font = TTFont(io.BytesIO(woff))
    shown = wide_chars(html.split("</style>", 1)[1])
    assert shown and set(shown) <= {chr(c) for c in font.getBestCmap()}
    assert len(woff) < 100_000  # a subset: the whole font is 5 MB
    assert_self_contained(html)


def screenshot(html: str, folder: Path, name: str) -> Image.Image:
    """``html`` with the probe characters in a row of fixed cells at the top left, as Chromium draws it."""
    cells = "".join(f'<span style="display:inline-block;width:{CELL}px;height:{CELL}px;font-size:64px;'
                    f'line-height:{CELL}px;text-align:center;overflow:hidden;vertical-align:top">{c}</span>'
                    for c in PROBE)
    probe = ('<div style="position:fixed;top:0;left:0;z-index:99;background:#fff;line-height:0;white-space:nowrap">'
             f"{cells}</div>")
    page = folder / f"{name}.html"
    article = '<article class="dossier" lang="zh">'
    page.write_text(html.replace(article, f"{article}{probe}", 1), encoding="utf-8")
    png = folder / f"{name}.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={folder / ('profile-' + name)}", "--hide-scrollbars", f"--screenshot={png}",
                    f"--window-size={CELL * len(PROBE) + 40},{3 * CELL}", page.as_uri()],
                   capture_output=True, timeout=180, check=False)
    assert png.is_file(), f"Chromium wrote no screenshot for {name}"
    return Image.open(png).convert("L")


def glyph_cells(image: Image.Image) -> list[bytes]:
    """Each probe cell's pixels, thresholded; a cell with no ink at all fails the test."""
    cells = []
    for i in range(len(PROBE)):
        cell = image.crop((i * CELL, 0, (i + 1) * CELL, CELL)).point(lambda v: 255 if v > 128 else 0)
        assert cell.histogram()[0] > 40, f"cell {i} is blank"
        cells.append(cell.tobytes())
    return cells


def no_system_cjk_font() -> bool:
    found = (subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
             if shutil.which("fc-list") else None)
    return found is not None and found.returncode == 0 and not found.stdout.strip()


@needs_font
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (Debian: apt-get install -y chromium)")
def test_chromium_draws_chinese_glyphs_not_boxes(tmp_path: Path) -> None:
    """Distinct characters drawn as glyphs give distinct cells; missing glyphs are one box, repeated.
    The control (the same page without the embedded font) proves the point where the machine has no
    CJK font of its own."""
    html = render_html(chinese_report())
    embedded = glyph_cells(screenshot(html, tmp_path, "embedded"))
    assert len(set(embedded)) == len(PROBE), "some characters drew identical cells (boxes)"
    if no_system_cjk_font():
        control = glyph_cells(screenshot(re.sub(r"@font-face\{[^}]*\}", "", html), tmp_path, "control"))
        assert len(set(control)) == 1, "without the embedded font the cells should all be the same box"
