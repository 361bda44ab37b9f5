"""Public settings: every knob of Dossier, read from ``DOSSIER_*`` environment variables or passed in."""

from __future__ import annotations

from tools.config import KBSettings


class Settings(KBSettings):
    """All settings. Layers below extend this chain (knowledge base → engine → research)."""
