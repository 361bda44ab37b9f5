"""Test doubles for Dossier's LLM engine: an in-process scripted chat model and a scripted OpenAI-compatible HTTP server."""
