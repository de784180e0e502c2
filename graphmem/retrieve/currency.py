"""Current facts first: demote passages whose evidence for the query was superseded.

A temporal memory keeps a fact that a later one contradicted ("Ana lives in
Lisbon", ended by "Ana moved to Berlin"), with an ``invalid_at``
(graphmem/resolve/temporal.py). The passage that asserted it still matches a
question about the present ("Where does Ana live?") as well as the passage
with the new value, often better, since it shares more words with the question.

The rule, applied to the final graph-mode scores:

* the query's *relevant facts* are its ``fact_top_k`` closest facts (the same
  search that picks the seed facts, but over every fact, valid or not, and with
  no cosine threshold: a superseded fact often matches the question's words
  less well than the seeds must);
* a passage's *best evidence* is the most relevant of those facts that it
  asserts (``Fact.episodes``);
* where that best evidence is not valid at the reference time (``as_of``, else
  now: superseded, or not yet true then), the passage's score is multiplied by
  ``superseded_weight``.

So a passage that also states a fact still current and closer to the question
keeps its score, and passages with no relevant fact are untouched. The work is
one more top-k fact search, done as the seed facts' is (through the ANN index
over the fact vectors on a large store, so it does not grow with the store),
and the episodes of at most ``fact_top_k`` facts. ``superseded_weight = 1``
turns the rule off.
"""

from __future__ import annotations

import numpy as np

from graphmem.config import RetrievalSettings
from graphmem.retrieve.ann import VectorIndex
from graphmem.retrieve.projection import Projection
from graphmem.retrieve.seeds import best_facts


def superseded_passages(
    projection: Projection,
    query_vector: np.ndarray,
    valid: np.ndarray,
    settings: RetrievalSettings,
    fact_index: VectorIndex | None = None,
) -> np.ndarray:
    """Rows of the passages whose best evidence for the query is a fact that ``valid``
    (the facts valid at the reference time) leaves out; sorted, possibly empty."""
    if not settings.fact_top_k or not len(projection.fact_ids):
        return np.zeros(0, dtype=np.int64)
    facts, _ = best_facts(projection, query_vector, settings.fact_top_k, None, fact_index)
    decided: dict[int, bool] = {}  # passage row -> whether its best relevant fact is invalid
    for fact in facts.tolist():  # best first
        stale = not bool(valid[fact])
        for row in projection.fact_episode_rows(fact).tolist():
            decided.setdefault(int(row), stale)
    return np.array(sorted(row for row, stale in decided.items() if stale), dtype=np.int64)


def demote(scores: np.ndarray, rows: np.ndarray, weight: float) -> np.ndarray:
    """``scores`` with the entries ``rows`` lowered by ``1 - weight`` of their size (a copy):
    a positive score is multiplied by ``weight``; -inf (unrankable) stays -inf."""
    if weight == 1.0 or not len(rows):
        return scores
    out = np.array(scores, copy=True)
    out[rows] -= (1.0 - weight) * np.abs(out[rows])
    return out
