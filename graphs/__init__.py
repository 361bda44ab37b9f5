"""LangGraph wiring for Dossier: state, routes and graph builders (no business logic)."""
