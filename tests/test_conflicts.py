"""Conflicts between sources (across languages too), no invented ones, and document versions."""

from __future__ import annotations

import hashlib

from agents.offline.conflicts import find_contradictions
from agents.offline.reflect import find_contradictions as from_reflect
from agents.offline.reflect import is_draft
from agents.offline.text import use_glossary
from agents.offline.versions import superseded_ids
from agents.verify import verify_sections
from tools.glossary import GlossaryEntry
from tools.vocabulary import Evidence, Section


def passage(text: str, source: str, title: str | None = None) -> Evidence:
    digest = hashlib.sha256(f"{source}\x1f{text}".encode()).hexdigest()[:10]
    return Evidence(id=digest, kind="passage", text=text, source=source, doc_id=source, title=title or source)


EN = passage("The Harbour Bridge project has an approved budget of 1.8M CNY for 2026.",
             "projects/harbour_bridge.md", "Harbour Bridge overview")
ZH_OTHER = passage("Harbour Bridge 项目2026年的预算为250万元。", "projects/港口说明.md", "港口项目说明")
ZH_SAME = passage("Harbour Bridge 项目2026年的预算为180万元，施工期为18个月。", "projects/港口简报.md", "港口项目简报")


def assert_verified(description: str, ids: list[str], evidence: list[Evidence]) -> None:
    """The conflict sentence states only figures its cited sources hold."""
    markers = "".join(f"[ev:{i}]" for i in ids)
    section = Section(id="open", title="Contradictions", markdown=f"- {description.rstrip('.。')} {markers}.")
    v = verify_sections([section], {e.id: e for e in evidence}).verification
    assert v.flagged_claims == [] and v.numeric_claims >= 1


def test_cross_language_conflict_names_both_sources_and_figures() -> None:
    [c] = find_contradictions([EN, ZH_OTHER, ZH_SAME])
    assert sorted(c.evidence_ids) == sorted([EN.id, ZH_OTHER.id])
    assert "1.8M CNY" in c.description and "250万元" in c.description
    assert "Harbour Bridge overview" in c.description and "港口项目说明" in c.description
    assert_verified(c.description, c.evidence_ids, [EN, ZH_OTHER])
    [zh] = find_contradictions([EN, ZH_OTHER], language="zh")
    assert zh.description.startswith("关于") and "250万元" in zh.description


def test_same_figure_written_differently_is_no_conflict() -> None:
    assert find_contradictions([EN, ZH_SAME]) == []  # 1.8M CNY = 180万元
    same_en = passage("As approved, the Harbour Bridge project budget for 2026 is CNY 1,800,000.", "minutes.md")
    assert find_contradictions([EN, same_en]) == []


def test_cross_language_needs_the_same_subject() -> None:
    both = passage("In 2026 the Harbour Bridge budget is 1.8M CNY and the Tower budget is 2.5M CNY.",
                   "projects/all.md", "All projects")
    tower = passage("2026年Tower 项目的预算为250万元。", "projects/塔楼.md", "塔楼")
    assert find_contradictions([both, tower]) == []  # Tower: 2.5M = 250万
    [c] = find_contradictions([both, ZH_OTHER])  # Harbour Bridge: 1.8M against 250万
    assert "1.8M CNY" in c.description and "2.5M" not in c.description


def test_glossary_aligns_a_chinese_name_with_its_english_form() -> None:
    chinese = passage("海港大桥项目2026年的预算为250万元。", "projects/海港.md", "海港大桥")
    assert find_contradictions([EN, chinese]) == []  # nothing says 海港大桥 is the Harbour Bridge
    with use_glossary([GlossaryEntry(term="Harbour Bridge", synonyms=("海港大桥",), kind="entity")]):
        [c] = find_contradictions([EN, chinese])
    assert "1.8M CNY" in c.description and "250万元" in c.description


def test_version_numbers_in_titles_are_not_conflicts() -> None:
    pairs = [
        (passage("Welcome to the user guide of the scheduler 2.0.1 release.", "docs/scheduler.md", "Scheduler 2.0.1"),
         passage("Welcome to the user guide of the scheduler 0.3 release.", "docs/queue.md", "Queue 0.3")),
        (passage("Scheduler v2 user guide 3.1 describes the installation.", "docs/s.md", "Scheduler v2 user guide"),
         passage("Scheduler v2 user guide 4.2 describes the installation.", "docs/q.md", "Queue 0.3 user guide")),
        (passage("The client library 2.0 supports the HTTP protocol fully.", "docs/c.md", "Client library 2.0"),
         passage("The client library 0.3 supports the HTTP protocol fully.", "docs/d.md", "Client library 0.3")),
        (passage("Changes in the scheduler: 2.0.1 fixes the cache settings.", "docs/g.md", "Changelog"),
         passage("Changes in the scheduler: 0.3 fixes the cache settings.", "docs/h.md", "Changelog B")),
        (passage("Section 4.2 of the guide explains the cache settings.", "docs/e.md", "Engine guide"),
         passage("Section 3.1 of the guide explains the cache settings.", "docs/f.md", "Storage guide")),
        (passage("Python 3.12 is required by the build of the package.", "docs/i.md", "Build notes"),
         passage("Python 3.9 is required by the build of the package.", "docs/j.md", "Old build notes")),
    ]
    for a, b in pairs:
        assert find_contradictions([a, b]) == [], (a.text, b.text)


def test_dates_years_and_different_counts_are_not_conflicts() -> None:
    a = passage("The survey of 2024-03-01 counted 120 employees in the Lisbon office.", "hr/a.md", "Survey A")
    b = passage("The survey of 2025-03-01 counted 140 employees in the Lisbon office.", "hr/b.md", "Survey B")
    c = passage("The Lisbon office has 12 meeting rooms and 4 kitchens.", "hr/c.md", "Facilities")
    assert find_contradictions([a, b, c]) == []


def test_later_version_wins_and_the_earlier_is_named() -> None:
    draft = passage("The total budget of the depot renovation is 2.1M CNY.", "plans/depot_budget_v0.3_draft.md",
                    "Depot budget v0.3 draft")
    final = passage("The total budget of the depot renovation is 1.8M CNY.", "plans/depot_budget_v1.0_final.md",
                    "Depot budget v1.0 final")
    [c] = find_contradictions([final, draft])
    assert c.evidence_ids == [draft.id, final.id]  # the earlier version first, as before
    text = c.description
    assert "later version" in text and "earlier draft" in text
    assert text.index("1.8M CNY") < text.index("2.1M CNY") and "v1.0" in text and "v0.3" in text
    assert_verified(text, c.evidence_ids, [draft, final])


def test_chinese_versions_second_edition_supersedes_first() -> None:
    first = passage("仓库改造项目的总预算为210万元。", "plans/仓库预算（第一版）.md", "仓库预算（第一版）")
    second = passage("仓库改造项目的总预算为180万元。", "plans/仓库预算（第二版）.md", "仓库预算（第二版）")
    [c] = find_contradictions([second, first], language="zh")
    assert c.evidence_ids == [first.id, second.id]
    assert "较新的版本“仓库预算（第二版）”给出的是180万元" in c.description and "210万元" in c.description


def test_superseded_ids_maps_each_earlier_version_to_the_latest() -> None:
    v1 = passage("Crew of 12 for the depot.", "plans/site_plan_v1.md", "Site plan v1")
    v2 = passage("Crew of 14 for the depot.", "plans/site_plan_v2.md", "Site plan v2")
    v3 = passage("Crew of 15 for the depot.", "plans/site_plan_version 3.md", "Site plan, version 3")
    old_policy = passage("Effective date: 2024-03-01. Staff may fly economy.", "policy/travel.md", "Travel policy")
    new_policy = passage("Effective from 1 March 2025. This policy replaces the earlier one.",
                         "policy/travel_2025.md", "Travel policy")
    draft_zh = passage("预算为240万元。", "docs/预算草稿.md", "预算草稿")
    final_zh = passage("预算为180万元。", "docs/预算.md", "预算定稿")
    revised = passage("Revised budget of 3M.", "docs/budget_revised.md", "Budget (revised)")
    plain = passage("Budget of 2M.", "docs/budget.md", "Budget")
    evs = [v1, v2, v3, old_policy, new_policy, draft_zh, final_zh, revised, plain]
    assert superseded_ids(evs) == {v1.id: v3.id, v2.id: v3.id, old_policy.id: new_policy.id,
                                   draft_zh.id: final_zh.id, plain.id: revised.id}


def test_different_documents_are_not_versions() -> None:
    evs = [passage("Budget of 2M.", "reports/budget 2025.md", "Budget 2025"),
           passage("Budget of 3M.", "reports/budget 2026.md", "Budget 2026"),  # a bare year names the subject
           passage("Install with pip.", "pkg_a/README.md", "README"),
           passage("Install with conda.", "pkg_b/README_draft.md", "README (draft)")]  # another folder
    assert superseded_ids(evs) == {}


def test_reflect_still_exports_the_contradiction_api() -> None:
    assert from_reflect is find_contradictions
    assert is_draft(passage("x", "docs/a_draft.md")) and not is_draft(passage("x", "docs/a.md"))
