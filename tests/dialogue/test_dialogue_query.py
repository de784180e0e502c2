"""Dialogue-aware query handling (graphmem/retrieve/dialogue.py): the speakers'
names projected out of the query vector, and question turns handing their match to the
answer that follows. Unit checks on a hand-built projection, then the whole graph
search on a real conversation (embedded FalkorDB, spaCy, MiniLM)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graphmem.config import RetrievalSettings
from graphmem.memory import Memory
from graphmem.retrieve.dialogue import carry_to_answers, damp_speaker_names, question_answer_pairs, speaker_pattern
from graphmem.retrieve.projection import Projection, ends_with_question
from graphmem.retrieve.retriever import Retriever

TEXTS = [
    "[2023-05-01] Ana: Where do you walk your dogs?",  # question -> Ben answers
    "[2023-05-01] Ben: Along the river, every morning.",
    "[2023-05-01] Ben: Do you want to come along?",  # question -> Ben again: no answer
    "[2023-05-01] Ben: Bring a coat.",
    "[2023-05-01] Ana: Cute! Is that Daisy? [shares a photo of a dog]",  # a photo: content
]


def _projection(speakers: list[int] | None = None) -> Projection:
    """Entities 0 Ana, 1 Ben (speakers); turns 0..4 in order."""
    speakers = [0, 1, 1, 1, 0] if speakers is None else speakers
    pairs = [(turn, s) for turn, s in enumerate(speakers) if s >= 0]
    return Projection(
        entity_ids=["ana", "ben"],
        entity_names=["Ana", "Ben"],
        episode_ids=[f"t{i}" for i in range(5)],
        episode_questions=np.array([ends_with_question(t) for t in TEXTS]),
        episode_times=np.full(5, -1, dtype=np.int64),
        episode_vectors=np.eye(5, dtype=np.float32),
        mention_pairs=np.array(pairs, dtype=np.int32).reshape(-1, 2),
        fact_ids=[],
        fact_texts=[],
        fact_ends=np.zeros((0, 2), np.int32),
        fact_valid=np.zeros((0, 2), np.int64),
        fact_episodes=[],
        fact_vectors=np.zeros((0, 5), np.float32),
        synonym_pairs=np.zeros((0, 2), np.int32),
        synonym_scores=np.zeros(0, np.float32),
        next_pairs=np.array([[i, i + 1] for i in range(4)], dtype=np.int32),
        mention_speaker=np.ones(len(pairs), dtype=bool),
    )


def test_speaker_names_are_found_as_whole_words_only():
    pattern = speaker_pattern(_projection())

    def names(q: str) -> list[str]:
        return sorted(m.group("name") for m in pattern.finditer(q))

    assert names("Where does Ben walk Ana's dogs?") == ["Ana", "Ben"]
    assert names("what did ANA eat?") == ["ANA"]
    assert names("Where is the banana bench?") == [] and names("Where is Benjamin?") == []


def test_questions_hand_their_score_to_the_other_speakers_answer():
    p = _projection()
    questions, answers, asks = question_answer_pairs(p)
    # t2 is answered by its own speaker, t4 shares a photo (ends with the caption): neither pairs
    assert questions.tolist() == [0] and answers.tolist() == [1]
    assert asks.tolist() == [True, False, True, False, False]
    hybrid = np.array([1.0, 0.1, 0.5, 0.2, 0.3], dtype=np.float32)
    carried = carry_to_answers(p, hybrid, carry=0.8, question_weight=0.7)
    assert np.allclose(carried, [0.7, 0.8, 0.35, 0.2, 0.3])
    assert np.allclose(carry_to_answers(p, np.array([1.0, 0.9, 0, 0, 0], np.float32), 0.8, 1.0), [1.0, 0.9, 0, 0, 0])
    assert carry_to_answers(p, hybrid, carry=0.0, question_weight=1.0) is hybrid
    assert np.allclose(hybrid, [1.0, 0.1, 0.5, 0.2, 0.3])  # the input is not modified


def test_passages_without_speakers_take_no_part():
    p = _projection(speakers=[-1] * 5)  # document passages: no speaker mentions
    questions, _, asks = question_answer_pairs(p)
    assert len(questions) == 0 and not asks.any()
    assert speaker_pattern(p) is None
    vectors = np.eye(2, 5, dtype=np.float32)
    assert damp_speaker_names(p, ["Where is Ana?", "Ben?"], vectors, 0.5, lambda texts: 1 / 0) is vectors


def test_named_speakers_directions_are_projected_out(embedder):
    p = _projection()
    queries = ["Where does Ben walk his dogs?", "Where is the river path?", "Did Ana and Ben meet?"]
    asked = embedder.embed(queries)
    embedded: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        embedded.append(list(texts))
        return embedder.embed(texts)

    out = damp_speaker_names(p, queries, asked, 0.0, embed)
    assert embedded == [["Ana", "Ben"]]  # the names, once, not the queries
    ana, ben = embedder.embed(["Ana", "Ben"])
    assert abs(float(out[0] @ ben)) < 1e-5 and float(asked[0] @ ben) > 0.1
    assert abs(float(out[2] @ ana)) < 1e-5 and abs(float(out[2] @ ben)) < 1e-5  # both names gone
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.allclose(out[1], asked[1]) and np.allclose(asked, embedder.embed(queries))  # input untouched
    half = damp_speaker_names(p, queries, asked, 0.5, embed)
    assert len(embedded) == 1  # the name vectors are cached on the projection
    expected = asked[0] - 0.5 * float(asked[0] @ ben) * ben / float(ben @ ben)
    assert np.allclose(half[0], expected / np.linalg.norm(expected), atol=1e-5)
    assert damp_speaker_names(p, queries, asked, 1.0, embed) is asked


CHAT = {
    "conversations": [
        {
            "id": "ana-ben",
            "sessions": [
                {
                    "started_at": "2023-05-01T09:00:00",
                    "turns": [
                        {"speaker": "Ana", "text": "I baked bread with rosemary this weekend."},
                        {"speaker": "Ben", "text": "Sounds tasty. I spent Sunday repairing my bike."},
                        {"speaker": "Ana", "text": "What are the names of your dogs?"},
                        {"speaker": "Ben", "text": "Max and Daisy."},
                        {"speaker": "Ana", "text": "Lovely. My sister is visiting from Porto next week."},
                        {"speaker": "Ben", "text": "Have a great time with her."},
                    ],
                }
            ],
        }
    ]
}
DIALOGUE = dict(next_weight=2.0, damping=0.85, fusion_weight=0.7, passage_seed_weight=0.5, bm25_weight=0.45)


@pytest.fixture(scope="module")
def chat_memory(tmp_path_factory, embedder, extractor):
    home = tmp_path_factory.mktemp("dialogue-query")
    path = home / "chat.json"
    path.write_text(json.dumps(CHAT), encoding="utf-8")
    memory = Memory(home=home / "store")
    memory.ingest_dialogues([path])
    yield memory
    memory.close()


def _ranked(memory: Memory, query: str, mode: str = "graph", **knobs: float) -> list[str]:
    retriever = Retriever(
        memory.retriever.projection,
        memory.embedder,
        RetrievalSettings(**DIALOGUE, **knobs),
        query_entities=memory.extractor.query_mentions,
    )
    hits = retriever.search(query, k=6, mode=mode)
    texts = memory.episodes([h.uuid for h in hits])  # the projection holds no texts
    return [texts[h.uuid]["content"] for h in hits]


@pytest.mark.slow
def test_the_answer_outranks_the_question_that_prompted_it(chat_memory):
    query = "What are the names of Ben's dogs?"
    plain = _ranked(chat_memory, query)
    assert plain.index("What are the names of your dogs?") < plain.index("Max and Daisy.")
    knobs = dict(speaker_name_weight=0.0, answer_carry=0.8, question_turn_weight=0.7)
    tuned = _ranked(chat_memory, query, **knobs)
    assert tuned[0] == "Max and Daisy."
    # the dense baseline is the query as asked: the knobs leave it alone
    assert _ranked(chat_memory, query, "dense", **knobs) == _ranked(chat_memory, query, "dense")
