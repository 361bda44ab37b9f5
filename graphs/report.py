"""Assemble the final Report from the run's state: provenance, stop reason, figures, timings.

It lives with the graph because it reads the graph's state, typed as ``ResearchState``."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from graphs.state import ResearchState
from tools.vocabulary import Report, Usage, Verification

SECRET_FIELDS = {"api_key"}


def settings_hash(settings: Any) -> str:
    """A short hash of every setting except secrets, so two reports can be compared for setup."""
    data = settings.model_dump(mode="json", exclude=SECRET_FIELDS)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def tally(notes: list[str]) -> list[str]:
    """Each distinct note once, in first-seen order, with how often it happened (research turns repeat)."""
    counts: dict[str, int] = {}
    for note in notes:
        counts[note] = counts.get(note, 0) + 1
    return [note if n == 1 else f"{note} (x{n})" for note, n in counts.items()]


def build_report(
    state: ResearchState, *, engine: Any, settings: Any, kb_version: Any, timings: dict[str, float]
) -> Report:
    outline = state.get("outline")
    evidence = state.get("evidence") or {}
    reflection = state.get("reflection")
    return Report(
        run_id=state.get("run_id") or "",
        question=state["question"],
        language=state["language"],
        title=outline.title if outline else state["question"],
        plan=state["plan"],
        sections=state.get("final_sections") or [],
        references=state.get("references") or [],
        evidence=[evidence[k] for k in sorted(evidence)],
        gaps=state.get("pending_gaps") if state.get("stop_reason") != "covered" else [],
        contradictions=reflection.contradictions if reflection else [],
        stop_reason=state.get("stop_reason") or "max_rounds",
        rounds=state.get("round", 1),
        engine=engine.name + (" (fell back to offline)" if getattr(engine, "degraded", False) else ""),
        models=engine.models(),
        failures=state.get("failures") or [],
        llm_notes=tally(state.get("llm_notes") or []),
        settings_hash=settings_hash(settings),
        kb_version={"corpus_version": kb_version.corpus_version, "catalog_hash": kb_version.catalog_hash,
                    "embedder": kb_version.embedder},
        usage=state.get("usage") or Usage(),
        timings={k: round(v, 3) for k, v in timings.items()},
        verification=state.get("verification") or Verification(),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
