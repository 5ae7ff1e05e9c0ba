"""Gateway settings, from the environment (``EARSHOT_*``, and Twilio's names for its secrets)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from actors.core.agent import Agent
from actors.core.liveness import BOUND_S, GIVE_UP_S
from actors.core.playback_clock import LEAD_MS
from actors.core.twilio_stream import REFUSAL_BURST
from actors.transport import BACKLOG_FRAMES
from events.database import default_url
from events.encryption import MasterKey, parse_master_key
from gateway.agent_file import bundled_agent, load_agent

DEV_AUTH_TOKEN = "earshot-dev-auth-token"


@dataclass(frozen=True)
class Settings:
    public_url: str = "http://127.0.0.1:8000"  # how Twilio reaches us (behind a proxy: its URL)
    twilio_auth_token: str = DEV_AUTH_TOKEN
    # Signs stream tokens. Gateways behind one load balancer share it (a webhook and its
    # stream may reach different processes); None: a random one for this process alone.
    stream_secret: bytes | None = None
    stream_token_ttl_s: float = 30.0
    # Signs the requests to the agent's tools (X-Earshot-Signature); the tool checks it.
    # None: a random one for this process (enough for the bundled tools it serves itself).
    tools_secret: bytes | None = None
    # Each ended call's summary is POSTed here (signed with tools_secret), at least once:
    # retried from this many seconds, doubling to 5 minutes, across restarts.
    postcall_url: str | None = None
    postcall_retry_s: float = 2.0
    metrics_token: str = ""
    # Calls this process takes at once; the next caller hears a busy tone. The default is
    # the capacity bench/load.py measured with the embedded models on a 2-core machine
    # (see the README); a GPU server for the models raises it: measure, then set it.
    max_calls: int = 2
    # One caller number may place this many calls within the window; more hear busy.
    calls_per_number: int = 5
    calls_window_s: float = 60.0
    # After each caller turn the agent is heard within this (else a holding line), and a
    # reply still silent this long after the holding line gives way to the fallback line.
    liveness_bound_s: float = BOUND_S
    liveness_give_up_s: float = GIVE_UP_S
    # The event store unreachable this long: new calls are refused (busy) until it is back;
    # calls already talking go on, their events queued and retried.
    store_outage_bound_s: float = 10.0
    # On SIGTERM, calls in progress have this long to end by themselves; then each hears a
    # goodbye and is ended, and the process exits.
    drain_s: float = 60.0
    # Each gateway holds a lease in the store, renewed every third of this; a gateway gone
    # this long (killed) has its open calls ended by another, as "gateway lost".
    lease_s: float = 15.0
    db_url: str = field(default_factory=default_url)
    # Who the agent is and what it may do (EARSHOT_AGENT: a TOML or YAML file); the
    # bundled receptionist by default.
    agent: Agent = field(default_factory=bundled_agent)
    playout_lead_ms: float = LEAD_MS
    max_frame_bytes: int = 1 << 20
    inbound_backlog_frames: int = BACKLOG_FRAMES  # a call's caller audio queued beyond: dropped
    refusal_burst: int = REFUSAL_BURST  # invalid frames within a second that close the stream
    tts_voice: str = "heart"
    tts_model: str | None = None  # a local Sesame CSM directory (GPU); None: the embedded voice
    gil_switch_interval_s: float = 0.0005
    # The operator has the callers' consent (say, announced before the call is connected)
    # to keep their audio: it is then stored with the call, for `earshot replay --audio`.
    retain_audio: bool = False
    # The master key (base64, 32 bytes; `earshot data-key` makes one) under which each
    # call's words, numbers and audio are encrypted at rest. Without one they are stored
    # in plaintext, which a gateway beyond loopback does only with store_plaintext.
    data_key: bytes | None = None
    store_plaintext: bool = False
    converse: bool = True  # False: greet and listen only (no STT/LLM loaded)
    llm_url: str | None = None  # an OpenAI-compatible /v1 (vLLM); None: the embedded server
    # Embedded llama.cpp servers; each takes one request at a time, and the cores are shared
    # among them. None: one per two cores (one here: on 2 cores two servers measured no
    # better under a full call load, see the README).
    embedded_llm_servers: int | None = None
    llm_model: str = "embedded"
    max_reply_tokens: int = 60
    # The conversation the LLM is shown is kept within this (the oldest turns dropped
    # whole): the embedded model's window is 2,048 tokens, replies and prompt included.
    context_budget_tokens: int = 1500
    # A stage that takes longer than this has stalled: apologise and replace it.
    stt_timeout_s: float = 5.0
    llm_timeout_s: float = 10.0
    tts_timeout_s: float = 5.0
    # While the caller talks, a partial transcript this often (0: none).
    stt_rolling_every_ms: float = 1000.0
    # Start the reply at the pause that may end a turn (preemptive generation).
    preemptive: bool = True
    # The caller's turn ends after this much silence (the agent's reply then begins).
    end_of_turn_ms: float = 300.0

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from the environment (each variable once, in ``ENVIRONMENT``), then
        ``overrides``: the one place configuration is read. An override named after a field
        of the agent (``greeting=...``) replaces that field of the agent file's."""
        values: dict[str, object] = {}
        for variable, (name, parse) in ENVIRONMENT.items():
            if variable in os.environ:
                values[name] = parse(os.environ[variable])
        agent_fields = {
            k: overrides.pop(k) for k in list(overrides) if k in Agent.__struct_fields__
        }
        values.update(overrides)
        if agent_fields:
            agent = values.get("agent")
            base = agent if isinstance(agent, Agent) else bundled_agent()
            values["agent"] = msgspec.structs.replace(base, **agent_fields)
        return cls(**values)  # type: ignore[arg-type]

    def master_key(self) -> MasterKey | None:
        return None if self.data_key is None else MasterKey(self.data_key)

    @property
    def media_stream_url(self) -> str:
        """The ``wss://`` URL Twilio connects to (``ws://`` when the public URL is plain http)."""
        base = self.public_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/twilio/media"


def _flag(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")


ENVIRONMENT: dict[str, tuple[str, Callable[[str], object]]] = {
    "EARSHOT_PUBLIC_URL": ("public_url", lambda text: text.rstrip("/")),
    "TWILIO_AUTH_TOKEN": ("twilio_auth_token", str),
    "EARSHOT_STREAM_SECRET": ("stream_secret", str.encode),
    "EARSHOT_TOOLS_SECRET": ("tools_secret", str.encode),
    "EARSHOT_POSTCALL_URL": ("postcall_url", str),
    "EARSHOT_POSTCALL_RETRY_S": ("postcall_retry_s", float),
    "EARSHOT_METRICS_TOKEN": ("metrics_token", str),
    "EARSHOT_MAX_CALLS": ("max_calls", int),
    "EARSHOT_CALLS_PER_NUMBER": ("calls_per_number", int),
    "EARSHOT_CALLS_WINDOW_S": ("calls_window_s", float),
    "EARSHOT_LIVENESS_BOUND_S": ("liveness_bound_s", float),
    "EARSHOT_STORE_OUTAGE_BOUND_S": ("store_outage_bound_s", float),
    "EARSHOT_DRAIN_S": ("drain_s", float),
    "EARSHOT_LEASE_S": ("lease_s", float),
    "EARSHOT_DATA_KEY": ("data_key", parse_master_key),
    "EARSHOT_STORE_PLAINTEXT": ("store_plaintext", _flag),
    "EARSHOT_CONVERSE": ("converse", _flag),
    "EARSHOT_AGENT": ("agent", lambda text: load_agent(Path(text))),
    "EARSHOT_LLM_URL": ("llm_url", str),
    "EARSHOT_TTS_MODEL": ("tts_model", str),
    "EARSHOT_LLM_SERVERS": ("embedded_llm_servers", int),
    "EARSHOT_LLM_MODEL": ("llm_model", str),
    "EARSHOT_CONTEXT_TOKENS": ("context_budget_tokens", int),
    "EARSHOT_PLAYOUT_LEAD_MS": ("playout_lead_ms", float),
    "EARSHOT_RETAIN_AUDIO": ("retain_audio", _flag),
    "EARSHOT_STT_ROLLING_MS": ("stt_rolling_every_ms", float),
    "EARSHOT_PREEMPTIVE": ("preemptive", _flag),
    "EARSHOT_END_OF_TURN_MS": ("end_of_turn_ms", float),
    "EARSHOT_STT_TIMEOUT_S": ("stt_timeout_s", float),
    "EARSHOT_LLM_TIMEOUT_S": ("llm_timeout_s", float),
    "EARSHOT_TTS_TIMEOUT_S": ("tts_timeout_s", float),
}
"""Each environment variable the gateway reads: the setting it sets, and how it is parsed."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def refusal_to_serve(settings: Settings, host: str, gateways_alive: int = 0) -> str | None:
    """Why the gateway must not start listening on ``host`` with these settings, if it must
    not: beyond this machine, the development auth token (printed in the source) would let
    anyone sign a webhook, and callers' words must not be stored in plaintext unasked;
    beside other gateways on one store (``gateways_alive``), a stream token signed by one
    must be accepted by the others."""
    if gateways_alive and settings.stream_secret is None:
        return (
            f"{gateways_alive} other gateway(s) serve this store and EARSHOT_STREAM_SECRET is "
            "not set: a call whose webhook reached one and whose stream reached another "
            "would be refused; set the same EARSHOT_STREAM_SECRET on every gateway"
        )
    if is_loopback(host):
        return None
    if settings.twilio_auth_token == DEV_AUTH_TOKEN:
        return (
            f"refusing to listen on {host} with the development auth token: "
            "set TWILIO_AUTH_TOKEN to your Twilio account's auth token"
        )
    if settings.data_key is None and not settings.store_plaintext:
        return (
            f"refusing to listen on {host} without EARSHOT_DATA_KEY: callers' words would be "
            "stored in plaintext (`earshot data-key` makes a key; EARSHOT_STORE_PLAINTEXT=1 "
            "stores plaintext knowingly)"
        )
    return None
