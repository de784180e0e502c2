"""The limits on a search query, shared by the REST API and the CLI so both refuse the
same queries with the same words (kept free of fastapi and pydantic: the CLI imports it)."""

from __future__ import annotations

#: the longest query, in characters: longer text is a document, not a question
QUERY_MAX_CHARS = 4000


def query_problem(text: str) -> str | None:
    """Why ``text`` cannot be searched (one sentence, without the field name), or None when it can.

    A query must hold something other than whitespace and be at most
    :data:`QUERY_MAX_CHARS` characters long."""
    if not text.strip():
        return "the query is empty; give a question or keywords"
    if len(text) > QUERY_MAX_CHARS:
        return f"the query is {len(text)} characters, over the limit of {QUERY_MAX_CHARS}"
    return None
