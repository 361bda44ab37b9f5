"""The research roles (planner, researcher, reflector, writer), LLM-backed and offline."""
