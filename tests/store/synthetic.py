"""A small synthetic graph (8-dimensional vectors) written through the named
queries exactly as ingestion writes it, so every store gets the same data."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DIM = 8
T0 = 1_700_000_000_000  # 2023-11-14, epoch ms


def unit(seed: int) -> list[float]:
    vector = np.random.default_rng(seed).normal(size=DIM)
    return (vector / np.linalg.norm(vector)).astype(np.float32).tolist()


@dataclass
class Synthetic:
    group: str
    sources: list[dict] = field(default_factory=list)
    episodes: list[dict] = field(default_factory=list)
    entities: list[dict] = field(default_factory=list)
    mentions: list[dict] = field(default_factory=list)
    facts: list[dict] = field(default_factory=list)
    synonyms: list[dict] = field(default_factory=list)
    nexts: list[dict] = field(default_factory=list)
    vectors: dict[str, list[float]] = field(default_factory=dict)

    def id(self, name: str) -> str:
        return f"{self.group}-{name}"


def build(group: str) -> Synthetic:
    g = Synthetic(group)
    for name in ("a.txt", "b.txt"):
        g.sources.append(
            {
                "uuid": g.id(name),
                "group_id": group,
                "name": name,
                "kind": "doc",
                "uri": f"file:///{name}",
                "content_hash": f"hash-{name}",
                "metadata": "{}",
            }
        )
    texts = {
        "e1": ("a.txt", 0, "Ada Lovelace lives in Oslo near the fjord."),
        "e2": ("a.txt", 1, "Bob Marley knows Ada from the library."),
        "e3": ("b.txt", 0, "Ada Lovelace works with Carl Sagan in Oslo."),
    }
    for i, (key, (source, position, content)) in enumerate(texts.items()):
        g.episodes.append(
            {
                "uuid": g.id(key),
                "source_uuid": g.id(source),
                "group_id": group,
                "source": "doc",
                "source_id": source,
                "content": content,
                "content_hash": f"h{key}",
                "position": position,
                "title": source,
                "speaker": None,
                "occurred_at": T0 + i * 86_400_000,
                "ingested_at": T0 + 10 * 86_400_000,
            }
        )
        g.vectors[g.id(key)] = unit(i)
    g.nexts.append({"from": g.id("e1"), "to": g.id("e2")})
    for i, (key, name, kind) in enumerate(
        [
            ("ada", "Ada Lovelace", "PERSON"),
            ("bob", "Bob Marley", "PERSON"),
            ("oslo", "Oslo", "GPE"),
            ("carl", "Carl Sagan", "PERSON"),
        ]
    ):
        g.entities.append(
            {
                "uuid": g.id(key),
                "group_id": group,
                "name": name,
                "name_key": name.lower(),
                "type": kind,
                "aliases": [name],
            }
        )
        g.vectors[g.id(key)] = unit(10 + i)
    for episode, entity in [
        ("e1", "ada"),
        ("e1", "oslo"),
        ("e2", "bob"),
        ("e2", "ada"),
        ("e3", "ada"),
        ("e3", "carl"),
        ("e3", "oslo"),
    ]:
        g.mentions.append({"episode": g.id(episode), "entity": g.id(entity), "count": 1})
    for i, (key, s, p, o, episodes, valid) in enumerate(
        [
            ("f1", "ada", "lives_in", "oslo", ["e1"], T0),
            ("f2", "bob", "knows", "ada", ["e2"], None),
            ("f3", "ada", "works_with", "carl", ["e3"], T0 + 86_400_000),
            ("f4", "carl", "lives_in", "oslo", ["e1", "e3"], None),
        ]
    ):
        g.facts.append(
            {
                "uuid": g.id(key),
                "subject": g.id(s),
                "object": g.id(o),
                "group_id": group,
                "predicate": p,
                "text": f"{s} {p} {o}",
                "valid_at": valid,
                "invalid_at": None,
                "created_at": T0,
                "expired_at": None,
                "episodes": [g.id(e) for e in episodes],
            }
        )
        g.vectors[g.id(key)] = unit(20 + i)
    g.synonyms.append({"a": g.id("ada"), "b": g.id("carl"), "score": 0.9})
    return g


def write(store, g: Synthetic, batch_size: int = 500) -> None:
    """Write ``g`` with the queries ingestion uses (sources, nodes, edges, vectors)."""
    claim = {"group_id": g.group, "owner": "synthetic", "now": 1}
    rows = [{k: v for k, v in source.items() if k != "group_id"} for source in g.sources]
    store.run("sources_claim", rows=rows, dead=[], **claim)
    store.run_rows("entities_upsert", g.entities, batch_size, group_id=g.group)
    store.run_rows("episodes_upsert", g.episodes, batch_size, group_id=g.group)
    store.run_rows("next_upsert", g.nexts, batch_size, group_id=g.group)
    store.run_rows("mentions_upsert", g.mentions, batch_size, group_id=g.group)
    store.run_rows("facts_upsert", g.facts, batch_size, group_id=g.group)
    store.run_rows("synonyms_upsert", g.synonyms, batch_size, group_id=g.group)
    vector_batch = max(1, batch_size // 2)
    store.run_rows(
        "entity_embeddings_set",
        [{"uuid": e["uuid"], "embedding": g.vectors[e["uuid"]]} for e in g.entities],
        vector_batch,
        group_id=g.group,
    )
    store.run_rows(
        "episode_embeddings_set",
        [{"uuid": e["uuid"], "embedding": g.vectors[e["uuid"]]} for e in g.episodes],
        vector_batch,
        group_id=g.group,
    )
    store.run_rows(
        "fact_embeddings_set",
        [{"uuid": f["uuid"], "subject": f["subject"], "embedding": g.vectors[f["uuid"]]} for f in g.facts],
        vector_batch,
        group_id=g.group,
    )
    store.run("sources_complete_owned", uuids=[source["uuid"] for source in g.sources], **claim)
    store.run("revision_bump", group_id=g.group, first=1)
