"""The offline engine: deterministic roles that call no model."""
