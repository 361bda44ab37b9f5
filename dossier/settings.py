"""Public settings: every knob of Dossier, read from ``DOSSIER_*`` environment variables or passed in."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from graphs.config import ResearchSettings


class Settings(ResearchSettings):
    """All settings. Layers below extend this chain (knowledge base → engine → research)."""

    # A rejected value is not repeated in the error: it may be a URL or key with a password in it.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    runs_url: SecretStr | None = Field(
        None, description="Where runs are checkpointed: unset, kb/runs.sqlite; a postgresql://user:password@host/db "
        "URL, PostgreSQL, shared by every process and machine (needs the 'postgres' extra). Never printed.")
    runs_pool_size: int = Field(
        10, ge=1, le=200, description="PostgreSQL connections one process holds at most for its runs.")

    @field_validator("runs_url")
    @classmethod
    def _postgres_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql://user:password@host:port/dbname URL (unset: kb/runs.sqlite)")
        return url
