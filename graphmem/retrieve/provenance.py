"""Provenance seeds: the episodes that assert the query's best facts (off unless
``fact_episode_weight > 0``).

A seed fact normally steers the walk through its two entities, which in a long
conversation are often hubs (the speaker, "kids", "family"). The episodes a
fact came from (``Fact.episodes``) say exactly where it was stated, so they get
reset mass too: ``fact_episode_weight`` (relative to the entity seeds, which sum
to 1) split over the seed facts in proportion to their cosine, and within a
fact over its episodes.
"""

from __future__ import annotations

import numpy as np

from graphmem.retrieve.projection import Projection
from graphmem.retrieve.seeds import Seeds


def add_fact_episode_seeds(projection: Projection, seeds: Seeds, weight: float) -> None:
    if weight <= 0 or not seeds.facts:
        return
    E = projection.n_entities
    total = sum(score for _, score in seeds.facts)
    if total <= 0:
        return
    extra = np.zeros(len(projection.episode_ids), dtype=np.float32)
    for fact, score in seeds.facts:
        episodes = projection.fact_episode_rows(fact).tolist()
        for episode in episodes:
            extra[episode] += weight * (score / total) / len(episodes)
    seeds.reset[E:] += extra
