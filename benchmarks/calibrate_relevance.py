"""Calibrate the offline writer's relevance gate, and measure its abstention rule, on HotpotQA.

Relevance: every sentence of a question's ten paragraphs (two gold, eight distractors) is scored by
``agents.offline.relevance.relevance`` against the question, its paragraph title as the heading; a
sentence is positive when HotpotQA lists it as a supporting fact. The threshold (and the heading
weight) that maximise F1 on the dev split (questions 1-50) are chosen; the test split (51-100) is
reported at that setting and never used to choose.

Abstention (``agents.offline.support.supported``), both sides: on the gold paragraphs alone a
question is answerable and must not be abstained on; the same question against only paragraphs of
*other* questions (the two most similar by word overlap) is unanswerable and should be.

    python benchmarks/calibrate_relevance.py   # ~10 s, writes benchmarks/results/calibrate_relevance.json
"""

from __future__ import annotations

import json
import time
from typing import Any

from common import DATASETS, write_results

import agents.offline.relevance as rel
from agents.offline.support import supported
from tools.text.terms import terms
from tools.vocabulary import Evidence

DATA = DATASETS / "multihop" / "hotpotqa_100.json"
DEV, TEST = slice(0, 50), slice(50, 100)
THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]
HEADING_WEIGHTS = [0.0, 0.25, 0.5, 0.75, 1.0]
MAX_FALSE_ABSTENTION = 0.1


def _examples(items: list[dict]) -> list[tuple[rel.Query, list[tuple[str, str, bool]]]]:
    out = []
    for item in items:
        gold = {(t, i) for t, i in item["supporting_facts"]}
        sents = [(title, s.strip(), (title, i) in gold) for title, ss in item["context"] for i, s in enumerate(ss)]
        out.append((rel.make_query(item["question"]), [x for x in sents if x[1]]))
    return out


def _scores(examples: list, weight: float) -> list[tuple[float, bool, bool]]:
    """(score, anchored, gold) per sentence at a heading weight."""
    saved, rel.HEADING_WEIGHT = rel.HEADING_WEIGHT, weight
    try:
        return [(rel.relevance(q, s, t) if rel.overlaps(q, s) or weight else 0.0,
                 not q.anchors or any(rel.names(a, f"{t} {s}") for a in q.anchors), rel.on_aspect(q, s, t), g)
                for q, sents in examples for t, s, g in sents]
    finally:
        rel.HEADING_WEIGHT = saved


def _prf(scored: list[tuple[float, bool, bool, bool]], threshold: float, anchored: bool,
         aspect: bool = True) -> dict[str, float]:
    picked = [g for s, a, asp, g in scored if s >= threshold and (a or not anchored) and (asp or not aspect)]
    tp, gold = sum(picked), sum(g for *_, g in scored)
    p = tp / len(picked) if picked else 0.0
    r = tp / gold if gold else 0.0
    return {"precision": round(p, 3), "recall": round(r, 3), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 3),
            "kept": len(picked)}


def calibrate(items: list[dict]) -> dict[str, Any]:
    dev, test = _examples(items[DEV]), _examples(items[TEST])
    grid = []
    for weight in HEADING_WEIGHTS:
        scored = _scores(dev, weight)
        for threshold in THRESHOLDS:
            for anchored in (False, True):
                for aspect in (False, True):
                    grid.append({"heading_weight": weight, "threshold": threshold, "anchor_rule": anchored,
                                 "aspect_rule": aspect, **_prf(scored, threshold, anchored, aspect)})
    best = max(grid, key=lambda g: (g["f1"], g["precision"], -g["threshold"]))
    test_at = _prf(_scores(test, best["heading_weight"]), best["threshold"], best["anchor_rule"], best["aspect_rule"])
    no_anchor = max((g for g in grid if not g["anchor_rule"]), key=lambda g: (g["f1"], g["precision"]))
    # The writer also applies the aspect rule (a sentence must hold a key word besides the names):
    # shown here at the chosen threshold, on dev and test, so its cost in F1 is on record.
    adopted = next(g for g in grid if g["heading_weight"] == best["heading_weight"] and g["aspect_rule"]
                   and g["threshold"] == best["threshold"] and g["anchor_rule"] == best["anchor_rule"])
    adopted_test = _prf(_scores(test, best["heading_weight"]), best["threshold"], best["anchor_rule"], True)
    return {"criterion": "max F1 of 'sentence is a supporting fact' on dev (questions 1-50)",
            "chosen": best, "test_at_chosen": test_at, "best_without_anchor_rule": no_anchor,
            "adopted_with_aspect_rule": {"dev": adopted, "test": adopted_test},
            "dev_sentences": sum(len(s) for _, s in dev), "test_sentences": sum(len(s) for _, s in test),
            "grid": grid}


def _passages(item: dict, titles: list[str]) -> list[Evidence]:
    ctx = dict((t, ss) for t, ss in item["context"])
    return [Evidence(id=f"p{i}", kind="passage", text="".join(ctx[t]), title=t, source=t) for i, t in enumerate(titles)]


def _abstention_cases(items: list[dict]) -> list[tuple[str, list[Evidence], list[Evidence]]]:
    """(question, gold paragraphs, the two other questions' gold paragraphs most like the question)."""
    pool = [(t, ss, k) for k, item in enumerate(items) for t, ss in item["context"]
            if t in {f[0] for f in item["supporting_facts"]}]
    vocab = [set(terms(t + " " + "".join(ss))) for t, ss, _ in pool]
    out = []
    for k, item in enumerate(items):
        gold = list(dict.fromkeys(t for t, _ in item["supporting_facts"]))
        q = set(terms(item["question"]))
        others = sorted((i for i, (_, _, owner) in enumerate(pool) if owner != k),
                        key=lambda i: (-len(q & vocab[i]), i))
        evs = [Evidence(id=f"o{i}", kind="passage", text="".join(pool[i][1]), title=pool[i][0]) for i in others[:2]]
        out.append((item["question"], _passages(item, gold), evs))
    return out


def abstention(cases: list, threshold: float) -> dict[str, Any]:
    """False abstention with gold paragraphs; abstention against other questions' paragraphs."""
    answered = sum(supported(q, gold, threshold=threshold) for q, gold, _ in cases)
    refused = sum(not supported(q, other, threshold=threshold) for q, _, other in cases)
    n = len(cases)
    return {"threshold": threshold, "questions": n, "false_abstention": round(1 - answered / n, 3),
            "abstention": round(refused / n, 3)}


def calibrate_support(items: list[dict]) -> dict[str, Any]:
    """The support threshold: most abstention on dev with false abstention <= 10%."""
    dev, test = _abstention_cases(items[DEV]), _abstention_cases(items[TEST])
    grid = [abstention(dev, t) for t in THRESHOLDS]
    ok = [g for g in grid if g["false_abstention"] <= MAX_FALSE_ABSTENTION] or grid
    best = max(ok, key=lambda g: (g["abstention"] - g["false_abstention"], g["threshold"]))  # ties: the stricter
    return {"criterion": "max abstention - false abstention on dev with false abstention <= "
                         f"{MAX_FALSE_ABSTENTION} (ties: the higher threshold)",
            "chosen_dev": best, "test_at_chosen": abstention(test, best["threshold"]), "grid": grid}


def main() -> None:
    started = time.perf_counter()
    items = json.loads(DATA.read_text(encoding="utf-8"))
    results = calibrate(items)
    results["support"] = calibrate_support(items)
    a_dev, a_test = results["support"]["chosen_dev"], results["support"]["test_at_chosen"]
    c, t, a = results["chosen"], results["test_at_chosen"], results["adopted_with_aspect_rule"]
    table = ("| split | heading weight | threshold | anchor rule | aspect rule | precision | recall | F1 |\n"
             "|---|---|---|---|---|---|---|---|\n"
             f"| dev (1-50) | {c['heading_weight']} | {c['threshold']} | {c['anchor_rule']} | {c['aspect_rule']} | "
             f"{c['precision']} | {c['recall']} | {c['f1']} |\n| test (51-100) | same | same | same | same | "
             f"{t['precision']} | {t['recall']} | "
             f"{t['f1']} |\n| dev, adopted (aspect rule on) | same | same | same | True | {a['dev']['precision']} | "
             f"{a['dev']['recall']} | {a['dev']['f1']} |\n| test, adopted | same | same | same | True | "
             f"{a['test']['precision']} | {a['test']['recall']} | {a['test']['f1']} |\n\n"
             f"| support threshold {a_dev['threshold']} | dev | test |\n|---|---|---|\n"
             f"| false abstention (gold paragraphs) | {a_dev['false_abstention']} | {a_test['false_abstention']} |\n"
             f"| abstention (other questions' paragraphs) | {a_dev['abstention']} | {a_test['abstention']} |")
    write_results("calibrate_relevance", started=started, dataset=str(DATA.relative_to(DATASETS)),
                  parameters={"dev": "questions 1-50", "test": "questions 51-100", "thresholds": THRESHOLDS,
                              "heading_weights": HEADING_WEIGHTS},
                  results=results, table=table,
                  notes=["Chosen on dev only; the constants live in agents/offline/relevance.py.",
                         "HotpotQA distractors share the question's entities by design, so the gate's precision "
                         "here is a lower bound for ordinary knowledge bases."])
    print(table)


if __name__ == "__main__":
    main()
