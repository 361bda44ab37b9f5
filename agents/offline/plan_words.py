"""The words the offline planner writes and the words it must not take for names."""

from __future__ import annotations

import re
from dataclasses import dataclass

# aspect -> English and Chinese question about one entity {x}, the aspect's noun in each language, and a
# follow-up that deepens a single-clause question ({a} is the aspect as the question worded it).
# Every template must read well for any {x}: a name ("Harbour Bridge"), a plural ("the vendors"), a
# product ("httpx"). So no verb agrees with {x} ("does {x} cost" breaks on plurals) and no noun presumes
# what {x} is ("cases of {x}" breaks on names): nouns and passives carry the question instead.
PHRASES: dict[str | None, tuple[str, str, str, str, str, str]] = {
    "cost": ("What is the cost of {x}", "{x}的成本是多少", "cost", "成本",
             "What drives the {a} of {x}", "{x}的{a}受哪些因素影响"),
    "team": ("How many people are needed for {x}", "{x}需要多大的团队", "team size", "团队规模",
             "What roles are needed for {x}", "{x}团队需要哪些角色"),
    "duration": ("How long is the timeline for {x}", "{x}需要多长时间", "duration", "周期",
                 "What affects the timeline of {x}", "哪些因素影响{x}的{a}"),
    "satisfaction": ("How satisfied are users with {x}", "{x}的满意度如何", "satisfaction", "满意度",
                     "What drives satisfaction with {x}", "哪些因素影响{x}的{a}"),
    "risk": ("What are the risks of {x}", "{x}有哪些风险", "risks", "风险",
             "How can the {a} of {x} be mitigated", "如何降低{x}的{a}"),
    "benefit": ("What are the advantages of {x}", "{x}有哪些优势", "advantages", "优势",
                "What are the limitations of {x}", "{x}有哪些局限"),
    "quality": ("How good is the performance of {x}", "{x}的效果如何", "quality", "效果",
                "How can the {a} of {x} be improved", "如何提升{x}的{a}"),
    "trend": ("How did {x} change over time", "{x}随时间如何变化", "trend", "趋势",
              "What drove the changes in {x}", "{x}变化的原因是什么"),
    "count": ("What numbers are reported for {x}", "{x}的数量是多少", "number", "数量",
              "How do the figures for {x} break down", "{x}的构成如何"),
    "size": ("What is the size of {x}", "{x}的规模有多大", "size", "规模",
             "What determines the size of {x}", "哪些因素决定{x}的{a}"),
    None: ("What are the key characteristics of {x}", "{x}的主要特点是什么", "characteristics", "特点",
           "What are the key facts about {x}", "关于{x}有哪些关键事实"),
}


def phrases(key: str | None, noun_en: str = "", noun_zh: str = "") -> tuple[str, str, str, str, str, str]:
    """The templates for an aspect; a measure only a glossary knows ("revenue") gets the generic ones."""
    if key in PHRASES:
        return PHRASES[key]
    en = noun_en or (key or "").replace("_", " ")
    zh = noun_zh or en
    return (f"What is the {en} of {{x}}", f"{{x}}的{zh}是多少", en, zh,
            "What drives the {a} of {x}", "{x}的{a}受哪些因素影响")


# The planner's fact-finding questions about one subject: they ask about a name, not what the user
# asked, so the writer does not count them as answering the question (agents.offline.write).
GENERIC = (PHRASES[None][0], PHRASES[None][1], PHRASES[None][4], PHRASES[None][5],
           "What else do the documents say about {x}", "文档中关于{x}有哪些背景信息",
           "What else do the documents say about this question", "关于这个问题，文档中还有哪些相关信息")
_GENERIC_RE = [re.compile(re.escape(t).replace(r"\{x\}", ".+") + r".*[?？]?") for t in GENERIC]


def is_generic(question: str) -> bool:
    """A fact-finding sub-question of the planner's ("What are the key facts about X?"): it asks
    about a name, not what the user asked, so answering it alone does not answer the question."""
    return any(rx.fullmatch(question.strip()) for rx in _GENERIC_RE)

# Words capitalised only because they open the sentence: never names.
LEADING_STOP = frozenset("what how which who when where why should could would can is are do does did will the a an "
                          "in for and or tell show list give describe summarize summarise explain compare find "
                          "please let we our my i".split())

DEMONYMS = frozenset(
    "american british english scottish welsh irish french german italian spanish portuguese dutch belgian swiss "
    "austrian swedish norwegian danish finnish polish russian ukrainian greek turkish chinese japanese korean "
    "indian pakistani australian canadian mexican brazilian argentine argentinian chilean egyptian israeli "
    "iranian african european asian latin western eastern northern southern christian jewish muslim "
    "catholic protestant roman".split())


@dataclass(frozen=True)
class Entity:
    label: str  # as the question wrote it
    key: str  # squashed form: "fine-tuning", "fine_tuning" and "Fine Tuning" are one entity
    group: str  # the column (or lexicon group) whose values it is; "" when unknown
    start: int
