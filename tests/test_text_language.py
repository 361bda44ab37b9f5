"""One language rule and one definition of the CJK ranges (tools/text/language.py), used by every caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.offline.decompose import decompose
from tools.text.language import CJK_RE, EN_SHARE, HAN_RE, ZH_SHARE, cjk_share, detect_language, question_language

REPO = Path(__file__).resolve().parents[1]
# About a third of the weighted letters are Chinese: between the English and the Chinese threshold.
MIXED = "LangChain 和 LlamaIndex 哪个好？"


def test_mixed_question_is_planned_and_reported_in_one_language() -> None:
    share = cjk_share(MIXED)
    assert share is not None and EN_SHARE < share < 0.4 < ZH_SHARE
    assert detect_language(MIXED) == "mixed"  # documents and chunks: the three-way rule
    report = question_language(MIXED)  # what graphs/nodes.py gives the report
    plan = decompose(MIXED, [])  # what the offline planner writes its sub-questions in
    assert report == plan.language == "zh"
    assert all(HAN_RE.search(s.question) for s in plan.sub_questions)


@pytest.mark.parametrize("question, language", [
    ("What does RAG cost?", "en"),
    ("RAG和微调哪个便宜？", "zh"),
    ("LangChain 和 LlamaIndex 哪个好？", "zh"),
    ("ハイブリッド", "en"),  # kana without a Han character: not Chinese
    ("What is 微调 cost?", "zh"),  # a third of the weighted letters: Chinese, for planner and report alike
])
def test_planner_and_report_agree(question: str, language: str) -> None:
    assert question_language(question) == language
    assert decompose(question, []).language == language
    assert question_language(question, "en") == "en"  # a set report language wins


def test_han_is_part_of_cjk() -> None:
    assert HAN_RE.match("中") and HAN_RE.match("\U00020000") and CJK_RE.match("中")
    assert CJK_RE.match("か") and CJK_RE.match("한") and not HAN_RE.match("か") and not HAN_RE.match("。")


def test_han_ranges_are_written_once() -> None:
    """The Han block bounds appear in tools/text/language.py only; other modules import the names."""
    home = REPO / "tools" / "text" / "language.py"
    offenders = [str(p.relative_to(REPO)) for layer in ("dossier", "graphs", "agents", "tools")
                 for p in sorted((REPO / layer).rglob("*.py"))
                 if p != home and any(bound in p.read_text(encoding="utf-8") for bound in ("\\u4e00", "\\u3400"))]
    assert offenders == []
