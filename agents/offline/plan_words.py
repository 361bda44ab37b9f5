"""The words the offline planner writes and the words it must not take for names."""

from __future__ import annotations

# aspect -> English and Chinese question about one entity {x}, the aspect's noun in each language, and a
# follow-up that deepens a single-clause question ({a} is the aspect as the question worded it).
PHRASES: dict[str | None, tuple[str, str, str, str, str, str]] = {
    "cost": ("What does {x} cost", "{x}的成本是多少", "cost", "成本",
             "What drives the {a} of {x}", "{x}的{a}受哪些因素影响"),
    "team": ("How many people does {x} need", "{x}需要多大的团队", "team size", "团队规模",
             "What roles does a {x} team need", "{x}团队需要哪些角色"),
    "duration": ("How long does {x} take", "{x}需要多长时间", "duration", "周期",
                 "What affects how long {x} takes", "哪些因素影响{x}的{a}"),
    "satisfaction": ("How satisfied are users with {x}", "{x}的满意度如何", "satisfaction", "满意度",
                     "What drives satisfaction with {x}", "哪些因素影响{x}的{a}"),
    "risk": ("What are the risks of {x}", "{x}有哪些风险", "risks", "风险",
             "How can the {a} of {x} be mitigated", "如何降低{x}的{a}"),
    "benefit": ("What are the advantages of {x}", "{x}有哪些优势", "advantages", "优势",
                "What are the limitations of {x}", "{x}有哪些局限"),
    "quality": ("How well does {x} perform", "{x}的效果如何", "quality", "效果",
                "How can the {a} of {x} be improved", "如何提升{x}的{a}"),
    "trend": ("How has {x} developed over time", "{x}随时间如何变化", "trend", "趋势",
              "What drove the changes in {x}", "{x}变化的原因是什么"),
    "count": ("How many cases of {x} are there", "{x}的数量是多少", "volume", "数量",
              "How do the {x} break down by category", "{x}的构成如何"),
    None: ("What are the key characteristics of {x}", "{x}的主要特点是什么", "characteristics", "特点",
           "What are the key facts about {x}", "关于{x}有哪些关键事实"),
}

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
