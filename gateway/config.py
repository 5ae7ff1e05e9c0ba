"""Gateway settings, from the environment (``EARSHOT_*``, and Twilio's names for its secrets)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from actors.liveness import BOUND_S, GIVE_UP_S
from events.database import default_url

DEV_AUTH_TOKEN = "earshot-dev-auth-token"


@dataclass(frozen=True)
class Settings:
    public_url: str = "http://127.0.0.1:8000"  # how Twilio reaches us (behind a proxy: its URL)
    twilio_auth_token: str = DEV_AUTH_TOKEN
    stream_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    stream_token_ttl_s: float = 30.0
    metrics_token: str = ""
    # Calls this process takes at once; the next caller hears a busy tone. The default is
    # the capacity bench/load.py measured with the embedded models on a 2-core machine
    # (see the README); a GPU server for the models raises it: measure, then set it.
    max_calls: int = 2
    # After each caller turn the agent is heard within this (else a holding line), and a
    # reply still silent this long after the holding line gives way to the fallback line.
    liveness_bound_s: float = BOUND_S
    liveness_give_up_s: float = GIVE_UP_S
    # The event store unreachable this long: new calls are refused (busy) until it is back;
    # calls already talking go on, their events queued and retried.
    store_outage_bound_s: float = 10.0
    db_url: str = field(default_factory=default_url)
    greeting: str = "Hello, thanks for calling Earshot. How can I help you today?"
    playout_lead_ms: float = 200.0
    max_frame_bytes: int = 1 << 20
    inbound_backlog_frames: int = 250  # caller audio queued for a call beyond this is dropped
    refusal_burst: int = 50  # invalid frames within a second that close a stream (1008)
    tts_voice: str = "heart"
    tts_model: str | None = None  # a local Sesame CSM directory (GPU); None: the embedded voice
    gil_switch_interval_s: float = 0.0005
    # The operator has the callers' consent (say, announced before the call is connected)
    # to keep their audio: it is then stored with the call, for `earshot replay --audio`.
    retain_audio: bool = False
    converse: bool = True  # False: greet and listen only (no STT/LLM loaded)
    llm_url: str | None = None  # an OpenAI-compatible /v1 (vLLM); None: the embedded server
    # Embedded llama.cpp servers; each takes one request at a time, and the cores are shared
    # among them. None: one per two cores (one here: on 2 cores two servers measured no
    # better under a full call load, see the README).
    embedded_llm_servers: int | None = None
    llm_model: str = "embedded"
    system_prompt: str = (
        "You are the phone receptionist of The Harbour, a seafood restaurant open 12:00-22:00 "
        "every day. You take table bookings and answer questions. Reply in one or two short "
        "spoken sentences, no lists or symbols."
    )
    max_reply_tokens: int = 60
    # A stage that takes longer than this has stalled: apologise and replace it.
    stt_timeout_s: float = 5.0
    llm_timeout_s: float = 10.0
    tts_timeout_s: float = 5.0
    # While the caller talks, a partial transcript this often (0: none).
    stt_rolling_every_ms: float = 1000.0

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if "EARSHOT_PUBLIC_URL" in env:
            values["public_url"] = env["EARSHOT_PUBLIC_URL"].rstrip("/")
        if "TWILIO_AUTH_TOKEN" in env:
            values["twilio_auth_token"] = env["TWILIO_AUTH_TOKEN"]
        if "EARSHOT_STREAM_SECRET" in env:
            values["stream_secret"] = env["EARSHOT_STREAM_SECRET"].encode()
        if "EARSHOT_METRICS_TOKEN" in env:
            values["metrics_token"] = env["EARSHOT_METRICS_TOKEN"]
        if "EARSHOT_MAX_CALLS" in env:
            values["max_calls"] = int(env["EARSHOT_MAX_CALLS"])
        if "EARSHOT_LIVENESS_BOUND_S" in env:
            values["liveness_bound_s"] = float(env["EARSHOT_LIVENESS_BOUND_S"])
        if "EARSHOT_STORE_OUTAGE_BOUND_S" in env:
            values["store_outage_bound_s"] = float(env["EARSHOT_STORE_OUTAGE_BOUND_S"])
        if "EARSHOT_GREETING" in env:
            values["greeting"] = env["EARSHOT_GREETING"]
        if "EARSHOT_LLM_URL" in env:
            values["llm_url"] = env["EARSHOT_LLM_URL"]
        if "EARSHOT_TTS_MODEL" in env:
            values["tts_model"] = env["EARSHOT_TTS_MODEL"]
        if "EARSHOT_LLM_SERVERS" in env:
            values["embedded_llm_servers"] = int(env["EARSHOT_LLM_SERVERS"])
        if "EARSHOT_LLM_MODEL" in env:
            values["llm_model"] = env["EARSHOT_LLM_MODEL"]
        if "EARSHOT_SYSTEM_PROMPT" in env:
            values["system_prompt"] = env["EARSHOT_SYSTEM_PROMPT"]
        if "EARSHOT_PLAYOUT_LEAD_MS" in env:
            values["playout_lead_ms"] = float(env["EARSHOT_PLAYOUT_LEAD_MS"])
        if "EARSHOT_RETAIN_AUDIO" in env:
            values["retain_audio"] = env["EARSHOT_RETAIN_AUDIO"].lower() in ("1", "true", "yes")
        if "EARSHOT_STT_ROLLING_MS" in env:
            values["stt_rolling_every_ms"] = float(env["EARSHOT_STT_ROLLING_MS"])
        for stage in ("stt", "llm", "tts"):
            name = f"EARSHOT_{stage.upper()}_TIMEOUT_S"
            if name in env:
                values[f"{stage}_timeout_s"] = float(env[name])
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def media_stream_url(self) -> str:
        """The ``wss://`` URL Twilio connects to (``ws://`` when the public URL is plain http)."""
        base = self.public_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/twilio/media"
