"""Dialogue readers: the three formats, and errors that name the turn at fault."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graphmem.errors import InputError
from graphmem.ingest.dialogue import parse_time, read_conversations

LOCOMO = next(
    (
        p / "shared" / "data" / "locomo" / "locomo.json"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "data" / "locomo" / "locomo.json").is_file()
    ),
    Path("/nonexistent"),
)
UTC = UTC


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_json_chat_sessions_turn_times_and_ids(tmp_path):
    path = _write(
        tmp_path / "chat.json",
        {
            "conversations": [
                {
                    "id": "c1",
                    "title": "Ana and Ben",
                    "sessions": [
                        {
                            "started_at": "2023-05-08T13:56:00",
                            "turns": [
                                {"speaker": "Ana", "text": "Hello", "id": "t1"},
                                {
                                    "speaker": "Ben",
                                    "text": "Hi",
                                    "time": "2023-05-08T14:00:00+02:00",
                                    "caption": "a photo",
                                },
                            ],
                        },
                        {"turns": [{"speaker": "Ana", "text": "Later"}]},
                    ],
                }
            ]
        },
    )
    [conv] = read_conversations([path])
    assert conv.name == f"{path.resolve()}#c1" and conv.title == "Ana and Ben"
    assert [t.speaker for t in conv.turns] == ["Ana", "Ben", "Ana"] and conv.speakers == ["Ana", "Ben"]
    assert conv.turns[0].time == datetime(2023, 5, 8, 13, 56, tzinfo=UTC) and conv.turns[0].turn_id == "t1"
    assert conv.turns[1].time == datetime(2023, 5, 8, 12, 0, tzinfo=UTC)  # own time, converted to UTC
    assert conv.turns[2].time is None and conv.turns[2].session == 1
    assert conv.turns[1].embedding_text() == "[2023-05-08] Ben: Hi [shares a photo]"


def test_grown_conversation_keeps_its_prefix_hash(tmp_path):
    turns = [{"speaker": "Ana", "text": f"turn {i}"} for i in range(4)]
    a = read_conversations([_write(tmp_path / "a.json", {"id": "x", "sessions": [{"turns": turns[:3]}]})])[0]
    b = read_conversations([_write(tmp_path / "a.json", {"id": "x", "sessions": [{"turns": turns}]})])[0]
    assert a.content_hash != b.content_hash and b.prefix_hash(3) == a.content_hash


@pytest.mark.parametrize(
    "turn, field, words",
    [
        ({"text": "no speaker"}, "speaker", "turn 1"),
        ({"speaker": "Ana", "text": "  "}, "text", "turn 1"),
        ({"speaker": "Ana", "text": "x", "time": "sometime soonish"}, "time", "turn 1"),
    ],
)
def test_json_chat_errors_name_conversation_session_turn_and_field(tmp_path, turn, field, words):
    path = _write(
        tmp_path / "bad.json",
        {"conversations": [{"id": "c9", "sessions": [{"turns": [{"speaker": "Ana", "text": "fine"}, turn]}]}]},
    )
    with pytest.raises(InputError) as info:
        read_conversations([path])
    message = str(info.value)
    assert str(path.resolve()) in message and "conversation 'c9', session 0" in message and words in message
    assert info.value.field == field


def test_transcript_times_sessions_and_continuations(tmp_path):
    path = _write(
        tmp_path / "standup.txt",
        "# team chat\n--- 2023-05-08 09:00 ---\nAna: I moved to Berlin.\n"
        "  It is great.\n[2023-05-08 09:05] Ben: Congrats!\n--- 2023-06-01 ---\nAna: Back again.\n",
    )
    [conv] = read_conversations([path])
    assert [(t.speaker, t.text) for t in conv.turns] == [
        ("Ana", "I moved to Berlin.\nIt is great."),
        ("Ben", "Congrats!"),
        ("Ana", "Back again."),
    ]
    assert [t.time for t in conv.turns] == [
        datetime(2023, 5, 8, 9, 0, tzinfo=UTC),
        datetime(2023, 5, 8, 9, 5, tzinfo=UTC),
        datetime(2023, 6, 1, tzinfo=UTC),
    ]
    assert [t.session for t in conv.turns] == [0, 0, 1] and conv.turns[0].turn_id == "L3"


def test_transcript_missing_speaker_names_line_and_turn(tmp_path):
    path = _write(tmp_path / "t.txt", "Ana: hello\nBen: hi\nthis line has no speaker\n")
    with pytest.raises(InputError) as info:
        read_conversations([path])
    assert info.value.line == 3 and "turn 3" in str(info.value) and "missing speaker" in str(info.value)


def test_transcript_unparseable_time_names_line_and_turn(tmp_path):
    path = _write(tmp_path / "t.txt", "Ana: hello\n[the day after the party] Ben: hi\n")
    with pytest.raises(InputError) as info:
        read_conversations([path])
    assert info.value.line == 2 and info.value.field == "time" and "turn 2" in str(info.value)


def test_parse_time_accepts_written_dates_but_not_relative_ones():
    assert parse_time("1:56 pm on 8 May, 2023") == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert parse_time("2023-05-08") == datetime(2023, 5, 8, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_time("yesterday")


@pytest.mark.skipif(not LOCOMO.is_file(), reason="LoCoMo development data not present")
def test_locomo_file_reads_every_turn_with_its_dia_id():
    conversations = read_conversations([LOCOMO])
    assert len(conversations) == 7 and sum(len(c.turns) for c in conversations) == 3970
    first = conversations[0].turns[0]
    assert first.turn_id == "D1:1" and first.speaker == "Caroline"
    assert first.time == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert all(t.time is not None for c in conversations for t in c.turns)
