"""A tiny knowledge base for graph tests: a few documents (one a draft that contradicts) and a table."""

from __future__ import annotations

from pathlib import Path

from dossier.settings import Settings

DOCS = {
    "rag.md": "# RAG\n\n## Cost\n\nRAG costs 0.2M-3M CNY and needs 5-8 people. The knowledge base can be "
              "updated at any time without retraining.\n\n## Risks\n\nRetrieval quality depends on the index.\n",
    "finetune.md": "# Fine-tuning\n\n## Cost\n\nFine-tuning costs 5M-20M CNY and needs 5-10 people with heavy "
                   "GPU compute.\n\n## Pilot\n\nThe fine-tuning pilot overran its budget of 5.0M CNY.\n",
    "budget_draft.md": "# Budget DRAFT\n\nThe RAG programme budget for 2026 is 2.4M CNY.\n",
    "budget_final.md": "# Budget final\n\nThe RAG programme budget for 2026 is 1.8M CNY.\n",
    "微调.md": "# 微调说明\n\n微调的成本为500万至2000万元，需要5-10人。检索增强生成的成本为20万至300万元。\n",
}
COSTS_CSV = "approach,cost_cny,team\nrag,200000,5\nrag,3000000,8\nfine_tuning,5000000,5\nfine_tuning,20000000,10\n"
QUESTION = "What does RAG cost compared with fine-tuning?"
# What the scripted analysts (tests/support/analyst_script.py, benchmarks/) run on the costs table.
COSTS_SQL = ("SELECT approach, min(cost_cny) AS min_cost, max(cost_cny) AS max_cost FROM costs "
             "GROUP BY approach ORDER BY approach")


def write_corpus(root: Path) -> list[Path]:
    docs = root / "docs"
    tables = root / "tables"
    docs.mkdir(parents=True)
    tables.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    (tables / "costs.csv").write_text(COSTS_CSV, encoding="utf-8")
    return [docs, tables]


def graph_settings(kb_dir: Path, **overrides) -> Settings:
    base = dict(kb_dir=kb_dir, embedder="hash", engine="offline", chunk_tokens=64, chunk_overlap=8)
    return Settings(**{**base, **overrides})
