"""The pure end-of-speech decisions, fed probabilities by hand (32 ms chunks)."""

from __future__ import annotations

from actors.core.speech_turns import SpeechEdge, SpeechTurns


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
    assert found == [
        SpeechEdge(True, 0.0),
        SpeechEdge(False, 320.0, pause=True),
        SpeechEdge(True, 416.0, resumed=True),  # what began on the pause is moot
        SpeechEdge(False, 576.0, pause=True),
        SpeechEdge(False, 576.0),
    ]


def test_the_defaults_start_a_turn_after_96_ms_and_end_it_after_300_ms_of_silence() -> None:
    turns = SpeechTurns()
    found = edges(turns, [0.9] * 2)
    assert found == []  # 64 ms of speech: not yet a turn (a cough, an "mm")
    assert edges(turns, [0.9]) == [SpeechEdge(True, 0.0)]  # 96 ms
    assert edges(turns, [0.0] * 9) == [SpeechEdge(False, 96.0, pause=True)]  # 288 ms: not yet
    assert edges(turns, [0.0]) == [SpeechEdge(False, 96.0)]  # 320 ms >= 300 ms: ended


def test_while_the_agent_talks_64_ms_starts_a_turn_and_600_ms_of_silence_ends_it() -> None:
    turns = SpeechTurns()
    assert turns.feed(0.9, -30.0, 32.0, agent_talking=True) is None
    assert turns.feed(0.9, -30.0, 32.0, agent_talking=True) == SpeechEdge(True, 0.0)
    ended_at = None
    for chunk in range(1, 40):
        edge = turns.feed(0.0, -60.0, 32.0, agent_talking=True)
        if edge is not None and not edge.pause:
            ended_at = chunk
            break
    assert ended_at == 19  # 19 x 32 ms = 608 ms >= 600 ms (300 ms would be chunk 10)


def test_the_threshold_rises_with_the_noise_floor() -> None:
    quiet, noisy = SpeechTurns(), SpeechTurns()
    for _ in range(200):  # learn the floor from chunks that are clearly not speech
        quiet.feed(0.05, -70.0, 32.0)
        noisy.feed(0.05, -25.0, 32.0)
    assert quiet.current_threshold() == 0.5
    assert 0.74 < noisy.current_threshold() <= 0.8
    # A probability of 0.7 is speech in a quiet room, not on a noisy street.
    assert edges(quiet, [0.7] * 3) == [SpeechEdge(True, 200 * 32.0)]
    assert edges(noisy, [0.7] * 3) == []


def test_a_pause_after_unfinished_words_ends_the_turn_only_after_the_longer_silence() -> None:
    turns = SpeechTurns()  # 300 ms, or 1,300 ms after words that sound unfinished
    edges(turns, [0.9] * 5)
    quiet = [turns.feed(0.0, -60.0, 32.0, unfinished=True) for _ in range(45)]
    ended = [index for index, edge in enumerate(quiet) if edge is not None and not edge.pause]
    assert ended == [40]  # 41 x 32 ms = 1,312 ms >= 1,300 ms (300 ms would be chunk 9)
