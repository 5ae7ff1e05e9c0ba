"""The README's figures are the code's: each stated default, bound and threshold is read
from the README and compared with what the code does, and every test or bench the README
cites for a figure exists. (Measured figures live in the benches the README names.)"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from actors.core.agent import Silence
from actors.core.liveness import BOUND_S, FALLBACK_LINE, GIVE_UP_S, HOLD_LINE
from actors.core.speech_turns import SpeechTurns
from actors.engines.csm_synthesis import CsmEngine
from actors.engines.language_model import phrases
from events.group_commit import GroupCommitWriter
from gateway.agent_file import bundled_agent
from gateway.cli import SIMULATE_CAP_S, _parser
from gateway.config import ENVIRONMENT, Settings

ROOT = Path(__file__).resolve().parent.parent
README = " ".join((ROOT / "README.md").read_text().split())  # one line: figures wrap


def stated(pattern: str) -> tuple[str, ...]:
    """The groups of the README's one sentence matching ``pattern`` (it must be there)."""
    match = re.search(pattern, README)
    assert match is not None, f"the README no longer says: {pattern}"
    return match.groups()


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_every_cited_test_and_bench_exists() -> None:
    cited = set(re.findall(r"`((?:tests|bench)/[\w/]+\.py)", README))
    assert cited, "the README cites no test or bench"
    assert [path for path in sorted(cited) if not (ROOT / path).is_file()] == []


def test_every_documented_variable_is_read_and_every_read_one_documented() -> None:
    source = "\n".join(
        path.read_text()
        for folder in ("actors", "events", "gateway", "projections")
        for path in (ROOT / folder).rglob("*.py")
    )
    documented: set[str] = set()
    for names in re.findall(r"\| `((?:EARSHOT|TWILIO)_[A-Z_{},]+)`(?:, `([A-Z_]+)`)? \|", README):
        for name in filter(None, names):  # EARSHOT_{STT,LLM,TTS}_TIMEOUT_S stands for three
            group = re.search(r"\{([A-Z,]+)\}", name)
            options = group.group(1).split(",") if group else [""]
            documented |= {re.sub(r"\{[A-Z,]+\}", option, name) for option in options}
    assert len(documented) >= 17, documented
    assert [name for name in sorted(documented) if f'"{name}"' not in source] == []
    assert sorted(set(ENVIRONMENT) - documented) == []


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("EARSHOT_PLAYOUT_LEAD_MS", "playout_lead_ms"),
        ("EARSHOT_STT_ROLLING_MS", "stt_rolling_every_ms"),
        ("EARSHOT_MAX_CALLS", "max_calls"),
        ("EARSHOT_LIVENESS_BOUND_S", "liveness_bound_s"),
        ("EARSHOT_STORE_OUTAGE_BOUND_S", "store_outage_bound_s"),
        ("EARSHOT_DRAIN_S", "drain_s"),
        ("EARSHOT_CONTEXT_TOKENS", "context_budget_tokens"),
    ],
)
def test_the_configuration_table_states_the_defaults(variable: str, field: str) -> None:
    (default,) = stated(rf"\| `{variable}` \|[^|]*\| ([\d.,]+) \|")
    assert number(default) == getattr(Settings(), field)


def test_the_stated_stage_timeouts_are_the_defaults() -> None:
    stt, llm, tts = stated(r"`EARSHOT_\{STT,LLM,TTS\}_TIMEOUT_S` \|[^|]*\| (\d+), (\d+), (\d+) \|")
    settings = Settings()
    assert (number(stt), number(llm), number(tts)) == (
        settings.stt_timeout_s,
        settings.llm_timeout_s,
        settings.tts_timeout_s,
    )
    (llm_again,) = stated(r"`EARSHOT_LLM_TIMEOUT_S` (\d+)")
    assert number(llm_again) == settings.llm_timeout_s


def test_reply_cap_stream_token_and_capacity() -> None:
    settings = Settings()
    assert number(stated(r"Replies are capped at (\d+) tokens")[0]) == settings.max_reply_tokens
    assert number(stated(r"a signed, (\d+)-second")[0]) == settings.stream_token_ttl_s
    assert number(stated(r"`EARSHOT_MAX_CALLS` defaults to (\d+)")[0]) == settings.max_calls
    lead = number(stated(r"never more than (\d+) ms ahead of playback")[0])
    assert lead == settings.playout_lead_ms


def test_the_liveness_promise() -> None:
    bound, hold, give_up, fallback = stated(
        r"the caller hears the agent within ([\d.]+) s .*?the agent says \"([^\"]+)\".*?"
        r"still silent (\d+) s later it is abandoned for \"([^\"]+)\""
    )
    assert (number(bound), hold, number(give_up), fallback) == (
        BOUND_S,
        HOLD_LINE,
        GIVE_UP_S,
        FALLBACK_LINE,
    )


def test_the_turn_detector_figures() -> None:
    start, start_agent, end, end_agent = stated(
        r"a turn starts after (\d+) ms of speech \((\d+) ms while the agent talks\), ends after "
        r"(\d+) ms of silence \((\d+) ms while the agent talks\)"
    )
    turns = SpeechTurns()
    assert (number(start), number(start_agent), number(end), number(end_agent)) == (
        turns.min_speech_ms,
        turns.barge_in_ms,
        turns.end_of_turn_ms,
        turns.end_of_turn_agent_ms,
    )
    (pause,) = stated(r"(\d+) ms of speech is enough to pause it")
    assert number(pause) == turns.barge_in_ms


def test_the_phrase_cuts() -> None:
    words, later, clause = stated(
        r"at its first sentence end, however short\s+\(\"Absolutely!\"\), or at a clause of "
        r"(\d+) words or more \(\"Sure, I can help,\"\); later ones at\s+sentence ends past "
        r"(\d+) characters \(or clauses past (\d+)\)"
    )
    # The first phrase: any sentence end, or a clause of the first figure's words.
    assert next(phrases(iter(["Absolutely! You can."]))) == "Absolutely!"
    short = " ".join(["a"] * (int(words) - 1)) + ", then more words follow here."
    assert next(phrases(iter([short]))) == short.strip()
    long_first = " ".join(["b"] * int(words)) + ", and the rest"
    assert next(phrases(iter([long_first]))) == " ".join(["b"] * int(words)) + ","
    # Later ones: a sentence end past the second figure, a clause past the third.
    tiny = "c" * (int(later) - 3) + "."  # with its leading space, one short
    assert list(phrases(iter(["Yes. " + tiny + " " + tiny])))[1] == f"{tiny} {tiny}"
    second = "c" * (int(clause) - 4) + ", d."
    cut = list(phrases(iter([long_first + ". " + second])))
    assert cut[-1] == second
    third = "e" * (int(clause) + 1) + ", f."
    assert list(phrases(iter([long_first + ". " + third])))[-2:] == [
        "e" * (int(clause) + 1) + ",",
        "f.",
    ]


def test_the_group_commit_figures() -> None:
    linger, batch = stated(r"\(linger (\d+) ms, up to ([\d,]+) events\)")
    defaults = inspect.signature(GroupCommitWriter.__init__).parameters
    assert number(linger) / 1000.0 == defaults["linger_s"].default
    assert number(batch) == defaults["max_batch_events"].default


def test_the_csm_streaming_step() -> None:
    frames, ms = stated(r"audio is decoded every (\d+) frames \((\d+) ms\)")
    step = inspect.signature(CsmEngine.__init__).parameters["chunk_frames"].default
    assert number(frames) == step and number(ms) == step * 80  # Mimi: 12.5 frames a second


def test_the_agent_files_silences_and_the_bundled_agent() -> None:
    reprompt, hangup = stated(r"reprompt_s = (\d+) .*? hangup_s = (\d+)")
    silence = Silence()
    assert (number(reprompt), number(hangup)) == (silence.reprompt_s, silence.hangup_s)
    start, end = stated(r"\*\*Silence\*\*: (\d+) s after .*? at (\d+) s `CallerSilent")
    assert (number(start), number(end)) == (silence.reprompt_s, silence.hangup_s)
    bundled = bundled_agent()
    (desk,) = stated(r'front_desk = "(\+\d+)"')
    assert bundled.transfer_targets["front_desk"] == desk
    assert (bundled.silence.reprompt_s, bundled.silence.hangup_s) == (
        silence.reprompt_s,
        silence.hangup_s,
    )


def test_the_address_make_run_serves_on_is_the_one_stated() -> None:
    host, port = stated(r"`make run` serves on `http://([\d.]+):(\d+)`")
    serve = _parser().parse_args(["serve"])
    simulate = _parser().parse_args(["simulate"])
    assert (serve.host, serve.port) == (host, int(port))
    assert simulate.url == f"http://{host}:{port}"
    (cap,) = stated(r"at most `--max-duration`, (\d+) s")
    assert simulate.max_duration == SIMULATE_CAP_S == number(cap)


def test_the_first_install_shows_progress_and_says_how_long_it_takes() -> None:
    """A newcomer's first `make` sat silent for minutes (pip --quiet): pip's progress is
    shown, filtered to what it collects and builds, and the wait is said up front."""
    makefile = (ROOT / "Makefile").read_text()
    install = next(line for line in makefile.splitlines() if "pip install -e" in line)
    assert "--quiet" not in install and "Building wheel" in install
    (minutes,) = stated(r"The first install takes about (\d+) minutes")
    assert f"about {minutes} minutes the first time" in makefile
