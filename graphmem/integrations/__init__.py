"""Adapters to RAG frameworks (each imports its framework lazily)."""
