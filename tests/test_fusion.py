"""Rank fusion: zero-score hits never take rank slots, weights steer the sides."""

from __future__ import annotations

import math

import pytest

from tools.fusion import TEXT, VECTOR, query_weights, rrf_fuse


def ids(fused: list[tuple[str, float]]) -> list[str]:
    return [doc_id for doc_id, _ in fused]


def test_rrf_rewards_agreement_between_sides() -> None:
    fused = rrf_fuse({VECTOR: [("a", 0.9), ("b", 0.8), ("c", 0.7)], TEXT: [("b", 5.0), ("d", 4.0)]}, k=60)
    assert ids(fused) == ["b", "a", "d", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1][1] == pytest.approx(1 / 61)


def test_zero_and_negative_scores_are_dropped() -> None:
    # A lexical side that cannot match (cross-lingual) returns zero-score filler: it must not
    # push the other side's hits down or add its own.
    fused = rrf_fuse({VECTOR: [("en1", 0.8), ("en2", 0.7)], TEXT: [("x", 0.0), ("y", -1.0), ("z", math.nan)]})
    assert ids(fused) == ["en1", "en2"]
    assert fused[0][1] == pytest.approx(1 / 61)


def test_ranks_count_only_matched_hits() -> None:
    fused = rrf_fuse({TEXT: [("zero", 0.0), ("a", 2.0)]}, k=10)
    assert fused == [("a", pytest.approx(1 / 11))]


def test_weights_shift_the_order() -> None:
    ranked = {VECTOR: [("v", 0.9)], TEXT: [("t", 3.0)]}
    assert ids(rrf_fuse(ranked, weights={VECTOR: 1.0, TEXT: 0.25})) == ["v", "t"]
    assert ids(rrf_fuse(ranked, weights={VECTOR: 0.25, TEXT: 1.0})) == ["t", "v"]
    assert ids(rrf_fuse(ranked, weights={VECTOR: 1.0, TEXT: 0.0})) == ["v"]
    weighted = dict(rrf_fuse(ranked, k=60, weights={VECTOR: 2.0}))
    assert weighted["v"] == pytest.approx(2 / 61) and weighted["t"] == pytest.approx(1 / 61)


def test_ties_are_broken_deterministically_and_duplicates_count_once() -> None:
    fused = rrf_fuse({VECTOR: [("b", 0.5), ("b", 0.4)], TEXT: [("a", 1.0)]})
    assert ids(fused) == ["a", "b"]
    assert fused[0][1] == fused[1][1]


def test_empty_input() -> None:
    assert rrf_fuse({}) == []
    assert rrf_fuse({VECTOR: [], TEXT: []}) == []


def test_query_weights_fade_text_side_across_languages() -> None:
    english_corpus = {"en": 1.0}
    assert query_weights("en", english_corpus) == {VECTOR: 1.0, TEXT: 1.0}
    cross = query_weights("zh", english_corpus)
    assert cross[VECTOR] == 1.0 and 0 < cross[TEXT] < 0.5
    # Mixed chunks serve both languages; a sizeable share restores the text side fully.
    assert query_weights("zh", {"en": 0.7, "mixed": 0.3})[TEXT] == 1.0
    assert query_weights("zh", {"en": 0.95, "zh": 0.05})[TEXT] < 1.0
    assert query_weights("mixed", english_corpus)[TEXT] == 1.0
    assert query_weights("zh", {}) == {VECTOR: 1.0, TEXT: 1.0}


def test_query_weights_fade_vector_side_outside_embedder_languages() -> None:
    weights = query_weights("zh", {"zh": 1.0}, vector_langs={"en"})
    assert weights[TEXT] == 1.0 and weights[VECTOR] < 0.5
    assert query_weights("en", {"zh": 1.0}, vector_langs={"en"})[VECTOR] == 1.0
