"""Fonts for the PDF and for chart images, found on disk; nothing is downloaded.

Latin text uses DejaVu, which matplotlib ships. Chinese text needs a font with CJK glyphs in
TrueType outlines (fpdf2 and Agg read those quickly): WenQuanYi Micro Hei from the
``paperang-p2-fonts-cjk`` wheel, a project dependency, else a system one.
"""

from __future__ import annotations

import importlib.util
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
