"""Which language a report is written in."""

from __future__ import annotations

from tools.textlang import detect_language


def question_language(question: str, setting: str = "auto") -> str:
    """The report follows the question: a Chinese question gets a Chinese report, unless set."""
    if setting != "auto":
        return setting
    return "zh" if detect_language(question) in ("zh", "mixed") and _has_cjk(question) else "en"


def _has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
