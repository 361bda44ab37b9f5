"""Data access for Dossier: parsing, chunking, embeddings, the LanceDB corpus and the DuckDB warehouse.

Nothing in this package calls a language model. Higher layers (agents, graphs, dossier) import from
here, never the other way round.
"""
