"""The ``earshot`` commands over a real SQLite file: replay, calls, forget, purge, serve's
refusals, and their one-line failures."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from events.catalogue import CallStarted
from events.database import alembic_config, create_engine, upgrade_async
from events.encryption import MasterKey, parse_master_key
from events.store import EventStore
from gateway.config import Settings, refusal_to_serve
from tests.projections.test_heard import interrupted_call
from tests.support.gateway import (
    AUTH_TOKEN,
    DATA_KEY_ENV,
    REPO,
    earshot,
    free_port,
    serve_process,
)

KEY = bytes(range(32))


async def stored_call(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/calls.db"
    await upgrade_async(url)
    engine = create_engine(url)
    await EventStore(engine).append("CA1", interrupted_call().events)
    await engine.dispose()
    return url


async def test_replay_json_has_the_documented_shape(tmp_path: Path) -> None:
    url = await stored_call(tmp_path)
    result = earshot("--db", url, "replay", "CA1", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"call_sid", "turns", "metrics", "timeline"}
    assert document["turns"][0] == {
        "role": "agent",
        "text": "Hello, thanks for calling Earshot.",
        "heard_text": "Hello, thanks",
        "out_start_ms": 500.0,
        "out_end_ms": 1900.0,
        "heard_ms": 900.0,
        "interrupted": True,
    }
    assert document["turns"][1]["role"] == "caller"
    assert document["turns"][1]["text"] == "I need to move my appointment"


async def test_replay_at_a_sequence_number_and_as_text(tmp_path: Path) -> None:
    url = await stored_call(tmp_path)
    early = json.loads(earshot("--db", url, "replay", "CA1", "--json", "--at", "7").stdout)
    assert early["turns"][0]["heard_text"] == "Hello," and not early["turns"][0]["interrupted"]
    text = earshot("--db", url, "replay", "CA1").stdout
    assert "heard 900 of 1400 ms: 'Hello, thanks' (cut mid-word: 'for')  INTERRUPTED" in text
    listing = earshot("--db", url, "calls")
    assert listing.stdout.startswith("CA1 ") and "9 events" in listing.stdout
    assert listing.stderr == ""  # a read command prints its answer, no diagnostics
    chatty = earshot("--log-level", "info", "--db", url, "calls")
    assert chatty.stdout == listing.stdout and "INFO" in chatty.stderr


async def test_unknown_call_and_corrupt_rows_fail_clearly(tmp_path: Path) -> None:
    url = await stored_call(tmp_path)
    missing = earshot("--db", url, "replay", "CA404")
    assert missing.returncode == 1 and "no call CA404" in missing.stderr
    import sqlite3

    with sqlite3.connect(f"{tmp_path}/calls.db") as db:
        db.execute("UPDATE events SET payload = x'00' WHERE seq = 5")
    broken = earshot("--db", url, "replay", "CA1")
    assert (
        broken.returncode == 2 and "call CA1 event #5: corrupt SpeechSynthesized" in broken.stderr
    )


def test_serve_refuses_the_development_token_beyond_loopback() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TWILIO_AUTH_TOKEN"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--host", "0.0.0.0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "earshot serve: refusing to listen on 0.0.0.0 with the development auth token: "
        "set TWILIO_AUTH_TOKEN to your Twilio account's auth token"
    ]
    assert refusal_to_serve(Settings(), "127.0.0.1") is None
    assert refusal_to_serve(Settings(twilio_auth_token="real", data_key=KEY), "0.0.0.0") is None


def test_serve_refuses_to_store_plaintext_beyond_loopback_unless_told() -> None:
    result = earshot("serve", "--host", "0.0.0.0", env={"TWILIO_AUTH_TOKEN": "real-token"})
    assert one_line_refusal(result).startswith(
        "earshot serve: refusing to listen on 0.0.0.0 without EARSHOT_DATA_KEY: "
        "callers' words would be stored in plaintext"
    )
    told = Settings(twilio_auth_token="real-token", store_plaintext=True)
    assert refusal_to_serve(told, "0.0.0.0") is None
    bad = earshot("serve", env={"EARSHOT_DATA_KEY": "c2hvcnQ"})
    assert one_line_refusal(bad) == "earshot: EARSHOT_DATA_KEY must be 32 bytes, not 5"


async def test_forget_and_purge_make_calls_unreadable_from_the_command_line(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/calls.db"
    await upgrade_async(url)
    engine = create_engine(url)
    store = EventStore(engine, MasterKey(KEY))
    await store.append("CA1", interrupted_call().events)
    await store.append(
        "CA2", [CallStarted(call_sid="CA2", seq=1, at_ms=0.0, stream_sid="MZ2", wall_time_unix=0)]
    )
    await engine.dispose()
    assert one_line_refusal(earshot("--db", url, "calls")) == (
        "earshot: call CA1 is stored encrypted: set EARSHOT_DATA_KEY to read it"
    )
    keyed = {"EARSHOT_DATA_KEY": base64.urlsafe_b64encode(KEY).decode()}
    assert "'Hello, thanks'" in earshot("--db", url, "replay", "CA1", env=keyed).stdout
    forgot = earshot("--db", url, "forget", "CA1", env=keyed)
    assert (forgot.returncode, forgot.stdout) == (0, "CA1: key destroyed\n")
    replay = earshot("--db", url, "replay", "CA1", env=keyed)
    assert replay.stdout.startswith("call CA1 was forgotten at ")
    assert "Hello" not in replay.stdout and "heard 900 of 1400 ms" in replay.stdout
    missing = earshot("--db", url, "forget", "CA404", env=keyed)
    assert (missing.returncode, missing.stdout) == (1, "CA404: no such call\n")
    assert earshot("--db", url, "purge", "--older-than", "30d", env=keyed).stdout == (
        "no calls that old\n"
    )
    purged = earshot("--db", url, "purge", "--older-than", "0s", env=keyed)
    assert (purged.returncode, purged.stdout) == (0, "CA2: key destroyed\n")
    made = earshot("data-key").stdout.strip()
    assert parse_master_key(made) != parse_master_key(earshot("data-key").stdout)


def one_line_refusal(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, result.stderr)
    return lines[0]


def test_reading_a_mistyped_sqlite_path_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "calls.db"
    for command in (["calls"], ["replay", "CA1"]):
        line = one_line_refusal(earshot("--db", f"sqlite+aiosqlite:///{missing}", *command))
        assert line.startswith(f"earshot: no event store at '{missing}'")
    assert list(tmp_path.iterdir()) == []  # no directory, no empty store


def test_an_unreachable_or_malformed_database_is_one_line() -> None:
    nobody = "postgresql+asyncpg://u@127.0.0.1:1/x"
    line = one_line_refusal(earshot("--db", nobody, "calls"))
    assert line.startswith("earshot: cannot reach the event store at postgresql+asyncpg://")
    assert one_line_refusal(earshot("--db", "notaurl", "calls")) == (
        "earshot: not a database URL: 'notaurl'"
    )
    line = one_line_refusal(
        earshot("--db", "postgresql+asyncpg://u@127.0.0.1:1/x", "db", "upgrade")
    )
    assert line.startswith("earshot: cannot reach the event store")


def test_reading_a_store_of_another_schema_asks_for_an_upgrade_and_changes_nothing(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.db"
    sqlite3.connect(old).close()  # a store from before any migration
    before = old.read_bytes()
    line = one_line_refusal(earshot("--db", f"sqlite+aiosqlite:///{old}", "calls"))
    head = ScriptDirectory.from_config(alembic_config(str(old))).get_current_head()
    assert line.endswith(f"has schema none, this build reads {head}: run `earshot db upgrade`")
    assert old.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.db"]
    assert earshot("--db", f"sqlite+aiosqlite:///{old}", "db", "upgrade").returncode == 0
    assert earshot("--db", f"sqlite+aiosqlite:///{old}", "calls").returncode == 0


def test_simulate_against_no_gateway_is_one_line() -> None:
    result = earshot("simulate", "--url", "http://127.0.0.1:1", "--duration", "1")
    assert one_line_refusal(result).startswith("earshot simulate: no gateway answering at")


def test_simulate_presses_keys_and_says_how_the_call_ended(tmp_path: Path) -> None:
    """`earshot simulate --press 0` against a real `earshot serve`: the key puts the caller
    through, and the command prints that Twilio was told to dial the front desk."""
    port = free_port()
    env = {"EARSHOT_DB_URL": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", **DATA_KEY_ENV}
    with serve_process(port, env, tmp_path / "gateway.log"):

        def simulate(*args: str) -> subprocess.CompletedProcess[str]:
            url = f"http://127.0.0.1:{port}"
            done = earshot("simulate", "--url", url, *args, env={"TWILIO_AUTH_TOKEN": AUTH_TOKEN})
            assert done.returncode == 0, done.stderr
            return done

        pressed = simulate("--press", "0").stdout
        hung_up = simulate("--press", "9").stdout
        listened = simulate()  # no script: the greeting is heard, then the caller hangs up
        capped = simulate("--press", "1", "--max-duration", "1")  # mid-greeting
    closed = "ended: the gateway closed the stream (1000)"
    assert f"{closed}; transferred: Twilio dials +15005550006" in pressed, pressed
    assert f"{closed}; hung up" in hung_up, hung_up
    assert "ended: the caller hung up, the script said and answered" in listened.stdout
    assert "voice-to-voice" not in listened.stdout and not listened.stderr, listened
    warning = "warning: the call was cut at --max-duration 1 s (1 line(s) of the script unsaid"
    assert capped.stderr.startswith(warning) and not capped.stdout.count("ended:"), capped


def test_simulate_refuses_a_key_not_on_a_keypad() -> None:
    result = earshot("simulate", "--press", "12")
    assert result.returncode == 2 and "'12' is not a key on a phone's keypad" in result.stderr


def test_a_broken_agent_file_stops_serve_in_one_line_naming_its_line(tmp_path: Path) -> None:
    agent = tmp_path / "agent.toml"
    agent.write_text('name = "t"\nsystem_prompt = "p"\ngreeting = "g"\n[silence]\nhangup_s = "x"\n')
    line = one_line_refusal(earshot("serve", "--port", "1", env={"EARSHOT_AGENT": str(agent)}))
    assert line.startswith(f"earshot: {agent}, line 5: Expected `float`"), line
