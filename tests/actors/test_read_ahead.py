"""Reading a speculative reply ahead (issue 13): while the turn is being confirmed, the Llm
reads the reply as far as its first phrase, which the Tts synthesizes unheard. The phrase
read ahead must be the one the whole stream will open with, whatever the chunking; and a
dropped reply's stream must stop at once, even mid-read."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from actors.core.tool_calls import ToolCallReader
from actors.llm import first_phrase, spoken_phrases
from actors.reply_streams import ReplyHolds

NAMES = ("book_table", "end_call")
REPLIES = [
    "We're open until ten tonight. Would you like to book?",
    "Sure, I can help with that, and the set menu is forty dollars per person.",
    "Yes.",
    "Of course: a table for two at eight. May I have your name?",
    "Hmm, let me see. We do have parking behind the restaurant, about fifty spaces.",
    "We open at 22:00 on Fridays, 21:00 otherwise.",
    '<tool_call>\n{"name": "end_call", "arguments": {}}\n</tool_call>',
    "I'll book it now. end_call()",
]


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in pairwise(points) if b > a]


@given(st.sampled_from(REPLIES), st.lists(st.integers(min_value=0, max_value=200), max_size=30))
def test_the_phrase_read_ahead_is_the_one_the_stream_opens_with(
    reply: str, cuts: list[int]
) -> None:
    deltas = chunked(reply, cuts)
    whole = list(spoken_phrases(iter(deltas), ToolCallReader(NAMES), lambda _: None))
    settled = [first_phrase(deltas[:n], NAMES) for n in range(1, len(deltas) + 1)]
    found = [phrase for phrase in settled if phrase is not None]
    assert found == [] or set(found) == {whole[0]}, (deltas, whole, settled)
    # once settled it stays settled: more text never changes the first phrase
    if found:
        first = settled.index(found[0])
        assert all(phrase == whole[0] for phrase in settled[first:])
    # a stream that ended is settled: its first phrase is the reply's (none for a bare call)
    assert first_phrase(deltas, NAMES, ended=True) == (whole[0] if whole else None)


def test_a_first_phrase_is_settled_only_by_text_after_its_end() -> None:
    assert first_phrase(["We're open until ten tonight."], NAMES) is None  # may go on: "...s"
    assert first_phrase(["We're open until ten tonight.", " Would"], NAMES) == (
        "We're open until ten tonight."
    )
    assert first_phrase(["Yes."], NAMES) is None  # too short to cut, and it may go on
    assert first_phrase(["Yes."], NAMES, ended=True) == "Yes."  # the whole reply


def test_a_call_is_never_read_ahead_as_speech() -> None:
    call = '<tool_call>\n{"name": "end_call", "arguments": {}}\n</tool_call> Goodbye now, thanks.'
    deltas = chunked(call, list(range(0, len(call), 5)))
    settled = [first_phrase(deltas[:n], NAMES) for n in range(1, len(deltas) + 1)]
    assert all(phrase is None or "end_call" not in phrase for phrase in settled)


class Stream:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def test_a_drop_cancels_the_stream_read_ahead_and_a_release_does_not() -> None:
    holds, dropped, released = ReplyHolds(), Stream(), Stream()
    holds.hold(1)
    holds.hold(2)
    assert holds.read_ahead(1, dropped) and holds.read_ahead(2, released)
    assert not holds.settled(1)
    holds.drop(1)
    holds.release(2)
    assert dropped.cancelled and not released.cancelled
    assert holds.settled(1) and holds.settled(2)
    assert holds.wait(1, 0.0) is False and holds.wait(2, 0.0) is True


def test_no_reading_ahead_once_the_turn_is_settled() -> None:
    holds, late = ReplyHolds(), Stream()
    holds.hold(1)
    holds.drop(1)  # the caller went on before the reply was sent
    assert not holds.read_ahead(1, late) and late.cancelled
    assert not holds.read_ahead(7, Stream())  # never held: read it as any reply
