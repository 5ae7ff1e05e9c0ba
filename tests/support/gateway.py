"""A real gateway for the tests: uvicorn (websockets) on a free localhost port, in a thread."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import uvicorn

from events.catalogue import AnyEvent, CallEnded
from events.database import create_engine
from events.encryption import MasterKey
from events.recorder import CallRecorder
from events.store import EventStore
from gateway.app import EarshotApp
from gateway.config import Settings
from projections.heard import LiveHeard

REPO = Path(__file__).resolve().parents[2]
AUTH_TOKEN = "test-auth-token-0123456789"
TEST_DATA_KEY = b"earshot-test-master-key-32-bytes"  # EARSHOT_DATA_KEY of the tests' gateways
DATA_KEY_ENV = {"EARSHOT_DATA_KEY": base64.b64encode(TEST_DATA_KEY).decode()}
"""The environment a command needs to read (or a process to write) the tests' stores."""
AGENT_FILE = """
name = "test receptionist"
system_prompt = "You are the receptionist of The Harbour, a restaurant."
greeting = "Hello, you are through to the harbour."

[transfer_targets]
front_desk = "+15005550006"

[digits]
0 = "transfer:front_desk"
9 = "end_call"
"""
"""The agent file of the tests' gateway processes (``serve_process``)."""
STAGE_TIMEOUT_S = 5.0
"""The fault tests' stage timeouts (STT, LLM, TTS): well above a real stage's time with two
real-STT calls sharing the 2 cores (about 1.5 s at worst here), so that only the injected fault
times out (issue 15, finding 12), and above the LLM's word gaps that the liveness tests trickle."""


@dataclass
class SeenCalls:
    """What the harness saw of each call as it ran: the monotonic origin of its ``at_ms``
    clock (to relate a caller's own clock to the stored events) and its live Heard (which
    a replay from the store must reproduce exactly)."""

    origins: dict[str, float] = field(default_factory=dict)
    live_views: dict[str, LiveHeard] = field(default_factory=dict)

    def __call__(self, recorder: CallRecorder, live: LiveHeard) -> None:
        self.origins[recorder.call_sid] = recorder.t0
        self.live_views[recorder.call_sid] = live


SEEN: weakref.WeakKeyDictionary[EarshotApp, SeenCalls] = weakref.WeakKeyDictionary()


def seen(app: EarshotApp) -> SeenCalls:
    """The calls a gateway started by ``running_gateway`` has taken."""
    return SEEN[app]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_gateway(db_url: str, **overrides: object) -> Iterator[tuple[str, EarshotApp]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The tests' webhooks come from one test number many times a minute: no per-number
    # limit unless a test sets one.
    overrides.setdefault("calls_per_number", 1_000_000)
    # Encrypted at rest, as a gateway in production runs.
    overrides.setdefault("data_key", TEST_DATA_KEY)
    settings = Settings.from_env(
        db_url=db_url,
        public_url=base,
        twilio_auth_token=AUTH_TOKEN,
        metrics_token="metrics-secret",
        **overrides,
    )
    app = EarshotApp(settings)
    app.services.call_observers.append(SEEN.setdefault(app, SeenCalls()))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws="websockets-sansio",
        lifespan="on",
        ws_max_size=settings.max_frame_bytes,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("gateway did not start")
        time.sleep(0.05)
    try:
        yield base, app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def serve_process(
    port: int, env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``earshot serve`` in a process of its own (greeting and listening unless ``env``
    says otherwise), once its ``/healthz`` answers; killed at the end if still running."""
    base = f"http://127.0.0.1:{port}"
    agent = log_path.with_suffix(".agent.toml")
    agent.write_text(AGENT_FILE)
    environment = {
        **os.environ,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "EARSHOT_PUBLIC_URL": base,
        "EARSHOT_CONVERSE": "0",
        "EARSHOT_AGENT": str(agent),
        **env,
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
            cwd=REPO,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while http_get_status(base + "/healthz", timeout=1)[0] != 200:
                assert process.poll() is None, log_path.read_text()[-2000:]
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.2)
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


async def stored_call(
    app: EarshotApp,
    call_sid: str,
    *,
    until: type[AnyEvent] | None = CallEnded,
    wait_s: float = 10.0,
) -> list[AnyEvent]:
    """A call's events as the gateway stored them, once an ``until`` event is among them
    (by default its ``CallEnded``): waiting on the record, not on a clock."""
    return await stored_in(app.settings.db_url, call_sid, until=until, wait_s=wait_s)


async def stored_in(
    db_url: str,
    call_sid: str,
    *,
    until: type[AnyEvent] | None = CallEnded,
    wait_s: float = 10.0,
) -> list[AnyEvent]:
    """``stored_call`` for a store named by URL (a gateway in another process)."""
    engine = create_engine(db_url)
    deadline = time.monotonic() + wait_s
    try:
        while True:
            events = await EventStore(engine, MasterKey(TEST_DATA_KEY)).read_call(call_sid)
            done = until is None or any(isinstance(e, until) for e in events)
            if done or time.monotonic() > deadline:
                return events
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


def sqlite_file_bytes(db_url: str) -> bytes:
    """The bytes of a SQLite store's files (the database, its WAL and shared memory): what
    someone who copies the disk holds."""
    path = Path(db_url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def webhook_params(call_sid: str) -> dict[str, str]:
    """The voice webhook's form fields as Twilio sends them for a new inbound call."""
    return {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": "+15005550006",
        "To": "+15005550001",
    }


def http_get(url: str, token: str | None = None) -> str:
    """The body of a GET (of an error status too: ``/healthz`` answers 503 with a reason)."""
    return http_get_status(url, token)[1]


def http_get_status(url: str, token: str | None = None, timeout: float = 10.0) -> tuple[int, str]:
    """Status and body of a GET; (0, reason) when nothing answers."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urlopen(Request(url, headers=headers), timeout=timeout) as response:
            return int(response.status), str(response.read().decode())
    except HTTPError as error:
        return error.code, str(error.read().decode())
    except OSError as error:  # refused, or not listening yet
        return 0, str(error)


def earshot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The ``earshot`` command line, run as a user would (the environment, plus ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
