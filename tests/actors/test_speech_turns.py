"""The pure end-of-speech decisions, fed probabilities by hand (32 ms chunks)."""

from __future__ import annotations

from actors.speech_turns import SpeechEdge, SpeechTurns


def edges(turns: SpeechTurns, probabilities: list[float]) -> list[SpeechEdge]:
    found = [turns.feed(p, -30.0, 32.0) for p in probabilities]
    return [edge for edge in found if edge is not None]


def test_a_pause_is_reported_before_the_end_of_turn_at_the_same_speech_end() -> None:
    turns = SpeechTurns(pause_ms=64.0, end_of_turn_ms=320.0)
    found = edges(turns, [0.9] * 10 + [0.0] * 10)
    assert found == [
        SpeechEdge(True, 0.0),
        SpeechEdge(False, 320.0, pause=True),  # after 2 quiet chunks
        SpeechEdge(False, 320.0),  # after 10: the same speech end, so the same audio
    ]


def test_speech_resuming_after_a_pause_moves_the_end() -> None:
    turns = SpeechTurns(pause_ms=64.0, end_of_turn_ms=320.0)
    found = edges(turns, [0.9] * 10 + [0.0] * 3 + [0.9] * 5 + [0.0] * 10)
    assert [edge for edge in found if not edge.started] == [
        SpeechEdge(False, 320.0, pause=True),
        SpeechEdge(False, 576.0, pause=True),
        SpeechEdge(False, 576.0),
    ]
