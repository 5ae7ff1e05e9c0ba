"""Nothing internal reaches the caller's ear: markers, brackets and role labels are removed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actors.core.spoken_text import clean_phrase, speakable
from actors.engines.language_model import phrases
from projections.context import INTERRUPTED_MARKER


def spoken(deltas: list[str]) -> list[str]:
    cleaned = (clean_phrase(p) for p in phrases(speakable(iter(deltas))))
    return [p for p in cleaned if p]


def test_the_copied_marker_is_never_spoken() -> None:
    reply = f"{INTERRUPTED_MARKER} Sure, a table for two at eight."
    assert spoken([reply]) == ["Sure, a table for two at eight."]


def test_a_marker_split_across_deltas_is_removed() -> None:
    deltas = ["Of course", ". [the ca", "ller interr", "upted you", " here] We open at noon."]
    assert " ".join(spoken(deltas)) == "Of course. We open at noon."


def test_the_marker_words_without_brackets_and_role_labels_are_removed() -> None:
    assert clean_phrase("The caller interrupted you here. Yes, we have parking.") == (
        "Yes, we have parking."
    )
    assert clean_phrase("Assistant: We open at noon.") == "We open at noon."
    assert clean_phrase("(the caller interrupted you here)") == ""


def test_a_reply_that_is_only_internal_text_is_empty() -> None:
    assert spoken([INTERRUPTED_MARKER]) == []
    assert spoken(["<", "break time='1s'/>", "[pause]"]) == []


def test_ordinary_replies_pass_unchanged() -> None:
    reply = "We open at 12:00, and close at 22:00 every day. Would you like a table?"
    assert " ".join(spoken([reply[i : i + 3] for i in range(0, len(reply), 3)])) == reply


@given(st.lists(st.text(alphabet="ab [].,<>", max_size=12), max_size=12))
def test_no_bracket_survives_the_filter(deltas: list[str]) -> None:
    text = "".join(speakable(iter(deltas)))
    assert "[" not in text and "<" not in text
