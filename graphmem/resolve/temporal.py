"""Facts that change over time: invalidation for predicates that hold one value at a time.

A *relation* (``lives in``, ``works at``, ... see
:data:`graphmem.config.DEFAULT_SINGLE_VALUED`, extensible through
``Settings.temporal``) groups surface predicates ("live in", "move to",
"relocate to"). For one subject and one relation, the facts form a timeline:

* every assertion has a time ``t``: the fact's ``valid_at`` (a date in the
  text, else its episode's ``occurred_at``), or, when it has none, the system
  time it was recorded (``created_at``; *now* for a new one);
* assertions are sorted by ``t``; on equal ``t`` facts already stored come
  first, then new ones in the order of their episodes (so within a session the
  later turn wins);
* consecutive assertions with the same object form one *run* (one ``FACT``
  edge whose ``valid_at`` is the earliest of them and whose ``episodes`` are all
  of theirs); a run ends (``invalid_at``) where the next run with a different
  object starts. ``expired_at`` is the system time at which graphmem learned
  that (kept once set, cleared if the fact becomes current again, e.g. after
  the contradicting source is forgotten).

So a later-arriving older fact is stored already invalid and does not end a
newer one, and ingesting the same facts in any order gives the same timeline.
A value that comes back (Lisbon -> Berlin -> Lisbon) gets a second edge
(its uuid includes its start time). Nothing is deleted here.

:func:`plan` is pure (rows in, rows out); :func:`apply` runs it against a
:class:`~graphmem.store.graph.Graph`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from graphmem.model import stable_uuid

if TYPE_CHECKING:
    from graphmem.store.graph import Graph

Key = tuple[str, str]  # (subject uuid, relation)


@dataclass
class Assertion:
    """One single-valued triple read from one episode (times in epoch ms)."""

    subject: str
    predicate: str
    object: str
    text: str
    valid_at: int | None
    episode: str
    seq: int = 0


@dataclass
class _Run:
    uuid: str
    subject: str
    object: str
    predicate: str
    text: str
    start: int
    valid_at: int | None
    stored: dict | None = None
    episodes: list[str] = field(default_factory=list)
    new: bool = False


def relation_of(predicate: str, relations: Mapping[str, str]) -> str | None:
    return relations.get(" ".join(predicate.lower().split()))


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def plan(
    assertions: Iterable[Assertion], stored: Iterable[Mapping], relations: Mapping[str, str], group_id: str, now: int
) -> tuple[list[dict], list[dict]]:
    """Resolve new single-valued ``assertions`` against ``stored`` facts of the same keys.

    ``stored`` rows carry uuid, subject, object, predicate, valid_at, invalid_at,
    created_at, expired_at. Returns ``(upserts, validity)``: fact rows to merge
    (new edges, or new episodes for existing ones) and, for every fact of the
    touched keys, its ``valid_at`` / ``invalid_at`` / ``expired_at``.
    """
    upserts: list[dict] = []
    validity: list[dict] = []
    for (subject, _), entries in _timelines(assertions, stored, relations, now).items():
        runs = _runs(subject, entries, group_id)
        for i, run in enumerate(runs):
            nxt = next((r for r in runs[i + 1 :] if r.object != run.object), None)
            upsert, times = _ended(run, nxt.start if nxt is not None else None, group_id, now)
            if upsert is not None:
                upserts.append(upsert)
            validity.append(times)
    return upserts, validity


#: one assertion or stored fact on a timeline, with its sort key: (time, stored 0 / new 1, order)
Entry = tuple[tuple[int, int, int], "Assertion | Mapping"]


def _timelines(
    assertions: Iterable[Assertion], stored: Iterable[Mapping], relations: Mapping[str, str], now: int
) -> dict[Key, list[Entry]]:
    """The stored facts and new assertions of each (subject, relation), in time order: at
    equal times stored facts first, then new ones in the order they were asserted."""
    items: dict[Key, list[Entry]] = {}
    for row in stored:
        relation = relation_of(row["predicate"], relations)
        if relation is not None:
            t = row["valid_at"] if row.get("valid_at") is not None else (row.get("created_at") or 0)
            items.setdefault((row["subject"], relation), []).append(((t, 0, 0), row))
    for a in assertions:
        relation = relation_of(a.predicate, relations)
        if relation is not None:
            t = a.valid_at if a.valid_at is not None else now
            items.setdefault((a.subject, relation), []).append(((t, 1, a.seq), a))
    for entries in items.values():
        entries.sort(key=lambda e: e[0])
    return items


def _runs(subject: str, entries: list[Entry], group_id: str) -> list[_Run]:
    """Consecutive entries with the same object, as runs (one FACT edge each)."""
    used = {value["uuid"] for _, value in entries if not isinstance(value, Assertion)}
    runs: list[_Run] = []
    for (t, _, _), value in entries:
        current = runs[-1] if runs else None
        if not isinstance(value, Assertion):
            if current is not None and current.object == value["object"] and current.stored is None:
                # new assertions that precede a stored run of the same value join it
                current.uuid, current.stored = value["uuid"], dict(value)
                current.valid_at = _min(current.valid_at, value.get("valid_at"))
            else:
                runs.append(
                    _Run(
                        uuid=value["uuid"],
                        subject=subject,
                        object=value["object"],
                        predicate=value["predicate"],
                        text="",
                        start=t,
                        valid_at=value.get("valid_at"),
                        stored=dict(value),
                    )
                )
        elif current is not None and current.object == value.object:
            current.valid_at = _min(current.valid_at, value.valid_at)
            if value.episode not in current.episodes:
                current.episodes.append(value.episode)
            if not current.text:
                current.text, current.predicate = value.text, value.predicate
            current.new = True
        else:
            base = stable_uuid(group_id, "fact", value.subject, value.predicate, value.object)
            uuid = base if base not in used else stable_uuid(base, str(t))
            used.add(uuid)
            runs.append(
                _Run(
                    uuid=uuid,
                    subject=subject,
                    object=value.object,
                    predicate=value.predicate,
                    text=value.text,
                    start=t,
                    valid_at=value.valid_at,
                    episodes=[value.episode],
                    new=True,
                )
            )
    return runs


def _ended(run: _Run, invalid_at: int | None, group_id: str, now: int) -> tuple[dict | None, dict]:
    """The run's fact row to merge (None when it brings nothing new) and its validity, ended
    at ``invalid_at`` (the start of the next run with another value; None: still true)."""
    if invalid_at is not None and run.valid_at is not None and invalid_at < run.valid_at:
        invalid_at = run.valid_at  # cannot happen with sorted runs; keeps the model's invariant
    expired_at = None
    if invalid_at is not None:
        previous = run.stored or {}
        expired_at = previous.get("expired_at") if previous.get("invalid_at") is not None else None
        expired_at = expired_at if expired_at is not None else now
    upsert = None
    if run.new and run.episodes:
        upsert = {
            "uuid": run.uuid,
            "group_id": group_id,
            "subject": run.subject,
            "object": run.object,
            "predicate": run.predicate,
            "text": run.text or run.predicate,
            "valid_at": run.valid_at,
            "invalid_at": invalid_at,
            "created_at": now,
            "expired_at": expired_at,
            "episodes": run.episodes,
        }
    return upsert, {
        "uuid": run.uuid,
        "subject": run.subject,
        "valid_at": run.valid_at,
        "invalid_at": invalid_at,
        "expired_at": expired_at,
    }


def keys_of(rows: Iterable[Mapping], relations: Mapping[str, str]) -> list[dict]:
    """Query rows ``{subject, predicates}`` for the single-valued keys touched by fact ``rows``."""
    by_relation: dict[str, list[str]] = {}
    for predicate, relation in relations.items():
        by_relation.setdefault(relation, []).append(predicate)
    keys: dict[Key, dict] = {}
    for row in rows:
        found = relation_of(row["predicate"], relations)
        if found is not None:
            keys.setdefault((row["subject"], found), {"subject": row["subject"], "predicates": by_relation[found]})
    return list(keys.values())


@dataclass
class TemporalPlan:
    upserts: list[dict]  # fact rows to merge (written with the batch's other facts)
    validity: list[dict]  # valid_at / invalid_at / expired_at of every fact of the touched keys
    ended: int  # facts this plan makes invalid that were current before


def resolve(
    graph: Graph, assertions: list[Assertion], relations: Mapping[str, str], now: int, keys: list[dict] | None = None
) -> TemporalPlan:
    """Read the stored facts of the keys ``assertions`` touch and :func:`plan` against them.

    ``keys`` (``{subject, predicates}``) adds timelines to recompute with no new
    assertion (after a forget). Nothing is written: write ``upserts`` with the
    other facts, then :func:`write_validity`.
    """
    wanted = keys_of([{"subject": a.subject, "predicate": a.predicate} for a in assertions], relations)
    seen = {(k["subject"], tuple(k["predicates"])) for k in wanted}
    wanted += [k for k in keys or [] if (k["subject"], tuple(k["predicates"])) not in seen]
    stored = graph.facts_by_subject_predicates(wanted)
    upserts, validity = plan(assertions, stored, relations, graph.group_id, now)
    before = {row["uuid"]: row.get("invalid_at") for row in stored}
    ended = sum(1 for v in validity if v["invalid_at"] is not None and before.get(v["uuid"]) is None)
    return TemporalPlan(upserts, validity, ended)


def write_validity(graph: Graph, temporal: TemporalPlan) -> None:
    graph.write("facts_set_validity", temporal.validity)


def retime(graph: Graph, keys: Iterable[Mapping], relations: Mapping[str, str], now: int) -> int:
    """Recompute the timelines of ``keys`` (rows with subject, predicate) after facts were
    removed; returns how many facts became current again."""
    wanted = keys_of(keys, relations)
    if not wanted:
        return 0
    stored = graph.facts_by_subject_predicates(wanted)
    _, validity = plan([], stored, relations, graph.group_id, now)
    graph.write("facts_set_validity", validity)
    ended_before = {row["uuid"] for row in stored if row.get("invalid_at") is not None}
    return sum(1 for v in validity if v["invalid_at"] is None and v["uuid"] in ended_before)
