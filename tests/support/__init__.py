"""Test-only helpers: the tests' scripted analyst (fitted to tests/graph_fixtures.py) and the crash-resume
harness. The reusable test doubles (scripted chat model, OpenAI-compatible stub) live in ``dossier.testing``."""
