"""A phrase cut into 20 ms frames with its marks: after each word's last frame, every 100 ms
where no word ends, and at the end."""

from __future__ import annotations

from actors.core.phrase_frames import end_mark, phrase_frames
from events.catalogue import WordTiming


def test_frames_and_marks_of_a_phrase() -> None:
    mulaw = bytes(160 * 12 + 80)  # 250 ms: 12 whole frames and a half one
    words = (WordTiming("hello", 0.0, 30.0), WordTiming("there", 40.0, 180.0))
    frames = phrase_frames(7, 2, mulaw, words)
    assert [len(f.mulaw) for f in frames] == [160] * 12 + [80]
    assert b"".join(f.mulaw for f in frames) == mulaw
    marks = {index: f.marks for index, f in enumerate(frames) if f.marks}
    assert marks == {
        1: ["r7s2w0"],  # "hello" ends at 30 ms, in the second frame
        8: ["r7s2w1"],  # "there" ends at 180 ms, in the ninth: no tick needed at 4 or 9
        4: ["r7s2f4"],
        9: ["r7s2f9"],
        12: ["r7s2end"],
    }
    assert end_mark(7, 2) == "r7s2end"


def test_a_word_past_the_audio_is_marked_on_the_last_frame_and_no_audio_is_no_frames() -> None:
    frames = phrase_frames(1, 0, bytes(320), (WordTiming("late", 0.0, 900.0),))
    assert frames[-1].marks == ["r1s0w0", "r1s0end"]
    assert phrase_frames(1, 0, b"", (WordTiming("x", 0.0, 10.0),)) == []
