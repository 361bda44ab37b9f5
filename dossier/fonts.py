"""Fonts for the PDF, chart images and the HTML report, found on disk; nothing is downloaded.

Latin text uses DejaVu, which matplotlib ships. Chinese text needs a font with CJK glyphs in
TrueType outlines (fpdf2 and Agg read those quickly): WenQuanYi Micro Hei from the
``paperang-p2-fonts-cjk`` wheel, a project dependency, else a system one. The HTML report embeds
the same font cut down to the characters it shows (a few dozen KB), so Chinese reads on a machine
without a CJK font.
"""

from __future__ import annotations

import importlib.util
import io
import re
from functools import lru_cache
from pathlib import Path

SYSTEM_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)


@lru_cache(maxsize=1)
def cjk_font() -> Path | None:
    """A TrueType font with Chinese glyphs, or None when there is none."""
    spec = importlib.util.find_spec("paperang_p2_fonts_cjk")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "fonts" / "wqy-microhei.ttc"
        if bundled.is_file():
            return bundled
    return next((Path(p) for p in SYSTEM_CJK_FONTS if Path(p).is_file()), None)


# CJK and other wide scripts, CJK punctuation and full-width forms: what DejaVu and the usual Latin
# system fonts lack. Private-use characters (the renderers' placeholders) are left out.
WIDE_CHARS_RE = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe10-\ufe6f\uff00-\uffef\U00020000-\U0003ffff]")
# Tables fontTools cannot subset (it would drop them with a warning on stderr) or a browser never reads.
_DROPPED_TABLES = ["FFTM", "DSIG", "LTSH", "VDMX", "hdmx", "PCLT"]


def wide_chars(text: str) -> str:
    """The distinct CJK (wide) characters of ``text``, sorted: the key of a font subset."""
    return "".join(sorted(set(WIDE_CHARS_RE.findall(text))))


@lru_cache(maxsize=8)
def cjk_subset_woff(chars: str) -> tuple[str, bytes] | None:
    """(family name, WOFF bytes) of the CJK font cut down to ``chars``; None without a CJK font
    or when it has none of them. Cached: Jupyter renders the same report again and again."""
    path = cjk_font()
    if path is None or not chars:
        return None
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(str(path), fontNumber=0, lazy=True)  # a .ttc: its first face, as fpdf2 and matplotlib use
    family = font["name"].getDebugName(1) or "Dossier CJK"
    options = subset.Options(flavor="woff", hinting=False, ignore_missing_unicodes=True)
    options.drop_tables += _DROPPED_TABLES
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=chars)
    subsetter.subset(font)
    if not font.getBestCmap():
        return None
    buffer = io.BytesIO()
    font.save(buffer)
    return family, buffer.getvalue()


def dejavu_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@lru_cache(maxsize=1)
def matplotlib_cjk_family() -> str | None:
    """Register the CJK font with matplotlib (Chinese labels in PNG charts); its family name."""
    path = cjk_font()
    if path is None:
        return None
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()
