"""Dialogue readers: chat logs on disk -> :class:`Conversation` records.

A conversation is a list of sessions (each with an optional start time), and a
session a list of turns (speaker, text, optional time). Ingestion makes one
episode per turn, in order, linked by ``NEXT`` edges; a turn's time is its own
``time`` or else its session's start.

Three formats are read, each with errors that name the file, the line (where
there is one) and the turn at fault:

* **graphmem JSON chat** (``.json``)::

    {"conversations": [
      {"id": "ana-and-ben",                      # unique within the file (required)
       "title": "Ana and Ben",                    # optional
       "sessions": [
         {"started_at": "2023-05-08T13:56:00",   # optional ISO time (or "8 May 2023, 1:56 pm")
          "turns": [
            {"speaker": "Ana", "text": "I moved to Berlin last month.",
             "time": "2023-05-08T13:57:10",       # optional, overrides the session time
             "id": "t1",                           # optional turn id (kept on the episode)
             "caption": "a photo of a flat"}      # optional description of shared media
          ]}]}]}

  A single conversation object, or a JSON list of them, is accepted too.

* **LoCoMo** (``.json``; snap-research/LoCoMo's ``locomo10.json`` layout): a list of
  ``{"sample_id", "conversation": {"speaker_a", "speaker_b", "session_N_date_time",
  "session_N": [{"speaker", "dia_id", "text", "blip_caption"?}]}, "qa": [...]}``.
  Turn ids are the ``dia_id`` values ("D3:5").

* **plain transcripts** (any text file, read with ``format="transcript"``)::

    # a comment line
    --- 2023-05-08 13:56 ---          a session break, optionally with its start time
    Ana: I moved to Berlin last month.
    [2023-05-08 14:02] Ben: Congratulations!    an optional per-turn time
      indented lines continue the previous turn

  A non-indented line without a ``Speaker:`` prefix is an error, as is a time
  that does not parse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from graphmem.errors import InputError
from graphmem.model import content_hash
from graphmem.timeutil import ensure_utc

DialogueFormat = Literal["auto", "json", "locomo", "transcript"]
JSON_SUFFIXES = {".json"}
TRANSCRIPT_SUFFIXES = {".txt", ".log", ".transcript"}
MAX_SPEAKER_CHARS = 80


@dataclass
class Turn:
    """One utterance. ``time`` is the turn's own time or else its session's start."""

    speaker: str
    text: str
    time: datetime | None = None
    turn_id: str = ""
    session: int = 0
    caption: str = ""

    def digest(self) -> str:
        stamp = self.time.isoformat() if self.time else ""
        return content_hash("\x1f".join((self.speaker, self.text, stamp, self.turn_id, self.caption)))

    def embedding_text(self) -> str:
        """What is embedded and BM25-indexed: "[2023-05-08] Ana: text" (the content stays raw)."""
        caption = f" [shares {self.caption}]" if self.caption else ""
        return f"{self.embedding_prefix()}{self.text}{caption}"

    def embedding_prefix(self) -> str:
        """What :meth:`embedding_text` puts before the turn's text."""
        date = f"[{self.time.date().isoformat()}] " if self.time else ""
        return f"{date}{self.speaker}: "


@dataclass
class Conversation:
    """One dialogue source: ``name`` identifies it for re-ingestion and forgetting."""

    name: str
    turns: list[Turn]
    title: str = ""
    uri: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(t.speaker for t in self.turns))

    def prefix_hash(self, n: int) -> str:
        """Hash of the first ``n`` turns: a grown chat log keeps its old prefix hash."""
        return content_hash("\x1f".join([self.title] + [t.digest() for t in self.turns[:n]]))

    @property
    def content_hash(self) -> str:
        return self.prefix_hash(len(self.turns))


# -- time ------------------------------------------------------------------------
def parse_time(value: object) -> datetime:
    """An absolute time: ISO 8601, or a written date such as "1:56 pm on 8 May, 2023".

    Raises ValueError for anything else (relative phrases like "yesterday" are
    refused: a turn's time must not depend on when it is read).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    text = value.strip()
    try:
        return ensure_utc(datetime.fromisoformat(text))
    except ValueError:
        pass
    from graphmem.extract.dates import parse_date

    parsed = parse_date(text.replace(" on ", " "), None)
    if parsed is None:
        raise ValueError(f"{value!r} is not a time (use ISO 8601, e.g. 2023-05-08T13:56)")
    return parsed


def _time(value: object, path: Path, where: str, field_name: str, line: int | None = None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}", path=path, line=line, field=field_name) from None


def _text(value: object, path: Path, where: str, field_name: str, line: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            f"{where}: missing or empty (a non-empty string is required)", path=path, line=line, field=field_name
        )
    return value


def _speaker(value: object, path: Path, where: str, line: int | None = None) -> str:
    speaker = _text(value, path, where, "speaker", line).strip()
    if len(speaker) > MAX_SPEAKER_CHARS:
        raise InputError(
            f"{where}: speaker name longer than {MAX_SPEAKER_CHARS} characters", path=path, line=line, field="speaker"
        )
    return speaker


# -- graphmem JSON chat ----------------------------------------------------------------
def read_json_chat(path: Path, data: Any) -> list[Conversation]:
    if isinstance(data, dict) and "conversations" in data:
        items = data["conversations"]
        if not isinstance(items, list):
            raise InputError("must be a list of conversations", path=path, field="conversations")
    elif isinstance(data, dict):
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise InputError("a chat file is a JSON object or list of conversations", path=path)
    conversations: list[Conversation] = []
    seen: set[str] = set()
    for c, item in enumerate(items):
        where = f"conversation {c}"
        if not isinstance(item, dict):
            raise InputError(f"{where}: must be an object", path=path)
        raw_id = item.get("id", str(c) if len(items) == 1 else None)
        if not isinstance(raw_id, (str, int)) or str(raw_id).strip() == "":
            raise InputError(f"{where}: missing (each conversation of a file needs a unique id)", path=path, field="id")
        conv_id = str(raw_id)
        if conv_id in seen:
            raise InputError(f"{where}: duplicate id {conv_id!r}", path=path, field="id")
        seen.add(conv_id)
        where = f"conversation {conv_id!r}"
        title = item.get("title") or ""
        if not isinstance(title, str):
            raise InputError(f"{where}: must be a string", path=path, field="title")
        sessions = item.get("sessions")
        if sessions is None and "turns" in item:
            sessions = [{"turns": item["turns"], "started_at": item.get("started_at")}]
        if not isinstance(sessions, list) or not sessions:
            raise InputError(f"{where}: missing or empty (a list of sessions is required)", path=path, field="sessions")
        turns: list[Turn] = []
        for s, session in enumerate(sessions):
            swhere = f"{where}, session {s}"
            if not isinstance(session, dict) or not isinstance(session.get("turns"), list):
                raise InputError(f"{swhere}: needs a 'turns' list", path=path, field="turns")
            started = _time(session.get("started_at"), path, swhere, "started_at")
            for t, turn in enumerate(session["turns"]):
                twhere = f"{swhere}, turn {t}"
                if not isinstance(turn, dict):
                    raise InputError(f"{twhere}: must be an object", path=path)
                caption = turn.get("caption") or ""
                turn_id = turn.get("id", "")
                turns.append(
                    Turn(
                        speaker=_speaker(turn.get("speaker"), path, twhere),
                        text=_text(turn.get("text"), path, twhere, "text"),
                        time=_time(turn.get("time"), path, twhere, "time") or started,
                        turn_id=str(turn_id) if turn_id is not None else "",
                        session=s,
                        caption=caption if isinstance(caption, str) else "",
                    )
                )
        if not turns:
            raise InputError(f"{where}: has no turns", path=path, field="turns")
        conversations.append(
            Conversation(
                name=f"{path}#{conv_id}",
                turns=turns,
                title=title,
                uri=path.as_uri(),
                metadata={"id": conv_id, "format": "json"},
            )
        )
    if not conversations:
        raise InputError("no conversations in file", path=path)
    return conversations


# -- LoCoMo ---------------------------------------------------------------------------------
_SESSION_KEY = re.compile(r"^session_(\d+)$")


def is_locomo(data: Any) -> bool:
    return (
        isinstance(data, list)
        and bool(data)
        and isinstance(data[0], dict)
        and isinstance(data[0].get("conversation"), dict)
        and "speaker_a" in data[0]["conversation"]
    )


def read_locomo(path: Path, data: Any) -> list[Conversation]:
    if not is_locomo(data):
        raise InputError("not in the LoCoMo layout (a list of {sample_id, conversation: {speaker_a, ...}})", path=path)
    conversations: list[Conversation] = []
    for c, item in enumerate(data):
        sample = str(item.get("sample_id") or f"conv-{c}")
        where = f"conversation {sample!r}"
        conv = item.get("conversation")
        if not isinstance(conv, dict):
            raise InputError(f"{where}: missing", path=path, field="conversation")
        numbers = sorted(int(m.group(1)) for k in conv if (m := _SESSION_KEY.match(k)))
        turns: list[Turn] = []
        for n in numbers:
            swhere = f"{where}, session_{n}"
            session = conv[f"session_{n}"]
            if not isinstance(session, list):
                raise InputError(f"{swhere}: must be a list of turns", path=path, field=f"session_{n}")
            started = _time(conv.get(f"session_{n}_date_time"), path, swhere, f"session_{n}_date_time")
            for t, turn in enumerate(session):
                twhere = f"{swhere}, turn {t}"
                if not isinstance(turn, dict):
                    raise InputError(f"{twhere}: must be an object", path=path)
                turn_id = turn.get("dia_id") or f"D{n}:{t + 1}"
                twhere = f"{swhere}, turn {turn_id}"
                caption = turn.get("blip_caption") or ""
                turns.append(
                    Turn(
                        speaker=_speaker(turn.get("speaker"), path, twhere),
                        text=_text(turn.get("text"), path, twhere, "text"),
                        time=started,
                        turn_id=str(turn_id),
                        session=n,
                        caption=caption if isinstance(caption, str) else "",
                    )
                )
        if not turns:
            raise InputError(f"{where}: has no turns", path=path, field="conversation")
        speakers = [str(conv.get("speaker_a") or ""), str(conv.get("speaker_b") or "")]
        conversations.append(
            Conversation(
                name=f"{path}#{sample}",
                turns=turns,
                title=" and ".join(s for s in speakers if s),
                uri=path.as_uri(),
                metadata={"id": sample, "format": "locomo"},
            )
        )
    return conversations


# -- plain transcripts ------------------------------------------------------------------------
_SESSION_LINE = re.compile(r"^-{3,}\s*(.*?)\s*-*\s*$")
_TURN_LINE = re.compile(
    r"^(?:\[(?P<time>[^\]]*)\]\s*)?(?P<speaker>[^:\[\]]{1,80}?)\s*:\s(?P<text>.*)$|"
    r"^(?:\[(?P<time2>[^\]]*)\]\s*)?(?P<speaker2>[^:\[\]]{1,80}?)\s*:$"
)


def read_transcript(path: Path, text: str) -> list[Conversation]:
    turns: list[Turn] = []
    lines: list[int] = []
    session, started = 0, None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if raw[:1].isspace():
            if not turns:
                raise InputError("an indented continuation line before any turn", path=path, line=number)
            turns[-1].text += "\n" + line.strip()
            continue
        marker = _SESSION_LINE.match(line)
        if marker:
            session += 1 if turns else 0
            started = _time(marker.group(1), path, "session break", "time", number) if marker.group(1) else None
            continue
        match = _TURN_LINE.match(line)
        if not match:
            raise InputError(
                f"turn {len(turns) + 1}: missing speaker (expected 'Speaker: text')",
                path=path,
                line=number,
                field="speaker",
            )
        speaker = (match.group("speaker") or match.group("speaker2") or "").strip()
        body = match.group("text") if match.group("speaker") else ""
        stamp = match.group("time") if match.group("speaker") else match.group("time2")
        if not speaker:
            raise InputError(f"turn {len(turns) + 1}: missing speaker", path=path, line=number, field="speaker")
        when = _time(stamp, path, f"turn {len(turns) + 1}", "time", number) if stamp is not None else None
        turns.append(
            Turn(speaker=speaker, text=body.strip(), time=when or started, session=session, turn_id=f"L{number}")
        )
        lines.append(number)
    for turn, number in zip(turns, lines, strict=True):
        if not turn.text.strip():
            raise InputError(f"turn by {turn.speaker!r}: empty text", path=path, line=number, field="text")
    if not turns:
        raise InputError("no turns (expected lines like 'Speaker: text')", path=path)
    return [
        Conversation(
            name=str(path),
            turns=turns,
            title=path.stem.replace("_", " "),
            uri=path.as_uri(),
            metadata={"format": "transcript"},
        )
    ]


# -- entry point ------------------------------------------------------------------------------------
def read_conversations(
    paths: Iterable[str | Path], fmt: DialogueFormat = "auto", max_file_bytes: int = 200 * 1024 * 1024
) -> list[Conversation]:
    """Read every conversation named by ``paths`` (files, folders, globs).

    ``fmt="auto"`` reads ``.json`` files as LoCoMo when they have its layout and
    as graphmem JSON chat otherwise, and other files as transcripts. Raises
    :class:`InputError` on the first bad file; nothing is returned partially.
    """
    from graphmem.ingest.readers import _read_text, expand_paths

    conversations: list[Conversation] = []
    for path in expand_paths(paths, suffixes=JSON_SUFFIXES | TRANSCRIPT_SUFFIXES):
        text = _read_text(path, max_file_bytes)
        kind = fmt
        if kind == "auto":
            kind = "json" if path.suffix.lower() in JSON_SUFFIXES else "transcript"
        if kind == "transcript":
            conversations += read_transcript(path, text)
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno) from None
        if kind == "locomo" or (fmt == "auto" and is_locomo(data)):
            conversations += read_locomo(path, data)
        else:
            conversations += read_json_chat(path, data)
    names: dict[str, None] = {}
    for conversation in conversations:
        if conversation.name in names:
            raise InputError(f"conversation {conversation.name!r} given twice")
        names[conversation.name] = None
    return conversations
