"""Public settings: every knob of Dossier, read from ``DOSSIER_*`` environment variables or passed in."""

from __future__ import annotations

from graphs.config import ResearchSettings


class Settings(ResearchSettings):
    """All settings. Layers below extend this chain (knowledge base → engine → research)."""
