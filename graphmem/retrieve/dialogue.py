"""Dialogue-specific retrieval priors (used only when their RetrievalSettings knobs are on).

Speaker prior: in a conversation memory, a question that names exactly one of
the speakers ("What does Caroline paint?") is nearly always answered by what
that speaker said (on the LoCoMo development conversations, 96% of the
evidence turns of such questions in the single-hop, multi-hop, temporal and
open-domain categories). With ``speaker_boost > 0`` the turns of the named
speaker get ``+speaker_boost`` on their hybrid (0..1) passage score and a
``1 + speaker_boost`` factor on their PPR score. Questions naming no speaker,
or several, are left alone; so are document passages, which have no speaker.
"""

from __future__ import annotations

import numpy as np

from graphmem.retrieve.projection import Projection


def named_speaker_turns(projection: Projection, query_entities: list[int]) -> np.ndarray | None:
    """Boolean mask of the turns spoken by the one speaker among ``query_entities``, or None."""
    speakers = projection.episode_speakers()
    if not len(speakers):
        return None
    named = {e for e in query_entities if e in projection.speaker_set()}
    if len(named) != 1:
        return None
    return speakers == named.pop()


def apply_speaker_prior(hybrid: np.ndarray, ppr: np.ndarray | None, turns: np.ndarray | None,
                        boost: float) -> tuple[np.ndarray, np.ndarray | None]:
    """(hybrid, ppr) with the named speaker's ``turns`` boosted (unchanged when ``turns`` is None)."""
    if turns is None or boost <= 0:
        return hybrid, ppr
    hybrid = hybrid + boost * turns.astype(hybrid.dtype)
    if ppr is not None:
        ppr = ppr * (1.0 + boost * turns.astype(ppr.dtype))
    return hybrid, ppr
