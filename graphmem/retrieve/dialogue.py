"""Dialogue-specific retrieval priors (used only when their RetrievalSettings knobs are on).

Speaker prior: in a conversation memory, a question that names exactly one of
the speakers ("What does Caroline paint?") is nearly always answered by what
that speaker said (on the LoCoMo development conversations, 96% of the
evidence turns of such questions in the single-hop, multi-hop, temporal and
open-domain categories). With ``speaker_boost > 0`` the turns of the named
speaker get ``+speaker_boost`` on their hybrid (0..1) passage score and a
``1 + speaker_boost`` factor on their PPR score. Questions naming no speaker,
or several, are left alone; so are document passages, which have no speaker.

Speaker names in the query vector: every turn is embedded as "[date] Speaker:
text" and most questions name a speaker, so in a small embedder (MiniLM) the
name dominates the query vector. It pulls in every turn of that speaker alike,
and the other speaker's turns that address them by name, rather than the turns
about what is asked. With ``speaker_name_weight < 1`` the component of the
query vector along each named speaker's own embedding (the name embedded
alone, once per projection) is scaled to that weight (0: projected out) and
the vector renormalised; it then scores the passages and the facts of the
graph search. On the LoCoMo development conversations this alone lifts dense
Recall@10 from 0.449 to 0.588 (0 weight); re-embedding the question with the
names replaced by "they" did about as well but costs a second embedding per
query. Queries naming no speaker, and document stores (no speakers), keep
their vector; the dense and BM25 modes (the baselines) always do.

Questions and their answers: a turn that ends with a question ("What are your
dogs' names?") matches a question put to the memory very well (questions look
alike to an embedder and share their words) but rarely holds the evidence: the
answer does, in the next turn, by the other speaker ("Max and Daisy."), which
often shares no word with the question. On the LoCoMo development
conversations, a quarter of all turns end with a question, and a third of the
turns the graph search ranked in its top 10 for multi-hop questions without
being evidence asked one. With ``answer_carry > 0`` such an answer's hybrid
score becomes at least ``answer_carry`` times its question's, and with
``question_turn_weight < 1`` question turns themselves are scaled down; both
happen before seeding, so the walk starts from the answers too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

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


def apply_speaker_prior(
    hybrid: np.ndarray, ppr: np.ndarray | None, turns: np.ndarray | None, boost: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """(hybrid, ppr) with the named speaker's ``turns`` boosted (unchanged when ``turns`` is None)."""
    if turns is None or boost <= 0:
        return hybrid, ppr
    hybrid = hybrid + boost * turns.astype(hybrid.dtype)
    if ppr is not None:
        ppr = ppr * (1.0 + boost * turns.astype(ppr.dtype))
    return hybrid, ppr


def _speaker_names(projection: Projection) -> list[str]:
    """The speakers' (non-blank) names, sorted."""
    return sorted({projection.entity_names[e] for e in projection.speaker_set() if projection.entity_names[e].strip()})


def speaker_pattern(projection: Projection) -> re.Pattern[str] | None:
    """A regex matching the speakers' names as whole words (any case; group ``name``), or None."""
    if "speaker_pattern" not in projection._cache:
        names = sorted(_speaker_names(projection), key=len, reverse=True)  # longest first: "Jo Ann" wins over "Jo"
        projection._cache["speaker_pattern"] = (
            re.compile(r"\b(?P<name>" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)
            if names
            else None
        )
    return projection._cache["speaker_pattern"]


def speaker_name_vectors(projection: Projection, embed: Callable[[list[str]], np.ndarray]) -> dict[str, np.ndarray]:
    """Lower-cased speaker name -> its embedding (embedded once per projection)."""
    if "speaker_name_vectors" not in projection._cache:
        names = _speaker_names(projection)
        vectors = np.asarray(embed(names), dtype=np.float32) if names else np.zeros((0, 0), np.float32)
        projection._cache["speaker_name_vectors"] = {n.lower(): v for n, v in zip(names, vectors, strict=True)}
    return projection._cache["speaker_name_vectors"]


def damp_speaker_names(
    projection: Projection,
    queries: Sequence[str],
    vectors: np.ndarray,
    weight: float,
    embed: Callable[[list[str]], np.ndarray],
) -> np.ndarray:
    """Query vectors with the directions of the speakers they name scaled to ``weight``
    (1 = unchanged, 0 = projected out), renormalised; queries naming no speaker keep theirs.

    The names are embedded once per projection through ``embed``, not per query.
    """
    pattern = speaker_pattern(projection) if weight < 1 else None
    if pattern is None:
        return vectors
    named = [sorted({m.group("name").lower() for m in pattern.finditer(q)}) for q in queries]
    if not any(named):
        return vectors
    by_name = speaker_name_vectors(projection, embed)
    out = np.array(vectors, dtype=np.float32, copy=True)
    for row, names in enumerate(named):
        if not names:
            continue
        # an orthonormal basis of the named speakers' directions (two names are not orthogonal)
        basis, _ = np.linalg.qr(np.stack([by_name[n] for n in names], axis=1))
        vector = out[row] - (1 - weight) * basis @ (basis.T @ out[row])
        norm = float(np.linalg.norm(vector))
        out[row] = vector / norm if norm > 0 else out[row]
    return out


def question_answer_pairs(projection: Projection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(questions, answers, asks): indices of the turns that end with a question and
    of the next turn when another speaker says it, plus a (P,) mask of every turn that
    ends with a question. Passages without a speaker take no part. A turn that shares a
    photo ends with its caption ("... [shares a photo of ...]"), so it does not count as
    a question: the photo is content (benchmarks/README.md, LoCoMo)."""
    if "question_answer_pairs" not in projection._cache:
        speakers = projection.episode_speakers()
        asks = (speakers >= 0) & np.asarray(projection.episode_questions, dtype=bool)  # texts end with "?"
        pairs = projection.next_pairs
        if len(pairs):
            first, then = pairs[:, 0], pairs[:, 1]
            keep = asks[first] & (speakers[then] >= 0) & (speakers[then] != speakers[first])
            questions, answers = first[keep].astype(np.int64), then[keep].astype(np.int64)
        else:
            questions = answers = np.zeros(0, dtype=np.int64)
        projection._cache["question_answer_pairs"] = (questions, answers, asks)
    return projection._cache["question_answer_pairs"]


def carry_to_answers(projection: Projection, hybrid: np.ndarray, carry: float, question_weight: float) -> np.ndarray:
    """Hybrid passage scores with each answer raised to ``carry`` times its question's score
    and the question turns scaled by ``question_weight`` (a copy; ``hybrid`` itself when
    ``carry`` is 0 and ``question_weight`` 1)."""
    if carry <= 0 and question_weight == 1:
        return hybrid
    questions, answers, asks = question_answer_pairs(projection)
    out = np.array(hybrid, copy=True)
    if carry > 0 and len(answers):
        np.maximum.at(out, answers, carry * hybrid[questions])
    if question_weight != 1:
        out[asks] *= question_weight
    return out
