"""What the gateway process shares among its calls: store writer, engines, tokens, counters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.call_supervisor import Engines
from actors.core.call_policy import DRAIN_GOODBYE, TIME_LIMIT_GOODBYE
from actors.core.liveness import FAILED_GOODBYE, FALLBACK_LINE, HOLD_LINE
from actors.engines.fixed_lines import FixedLines
from actors.engines.language_model import EmbeddedServer, warm_up
from actors.engines.llm_endpoints import LlmEndpoints
from actors.engines.speech_recognition import WhisperEngine
from actors.engines.speech_synthesis import HibariEngine, SpeechEngine
from actors.engines.tool_client import ToolRunner
from actors.engines.vad import SileroVadModel
from actors.messages import StreamStopped
from actors.tool_use import Tools
from events.database import create_engine, upgrade_async
from events.group_commit import GroupCommitWriter
from events.leases import LOST, Leases, new_instance_id
from events.outbox import PostCallOutbox
from events.recorder import CallRecorder
from events.store import EventStore
from gateway.admission import Admission, CallerRateLimit
from gateway.booking_service import BookingService
from gateway.config import Settings
from gateway.lease_keeper import LeaseKeeper
from gateway.postcall import PostCallSender
from gateway.stream_tokens import StreamTokens
from projections.heard import LiveHeard

log = logging.getLogger(__name__)

VLLM_BATCH = 32  # the README's `vllm serve --max-num-seqs`: requests served side by side


@dataclass
class Counters:
    calls_started: int = 0
    calls_active: int = 0
    webhooks_refused: int = 0
    # Calls turned away at the webhook, by reason: "busy" (the process was at capacity),
    # "store unavailable" (the event store was unreachable for too long).
    calls_refused: Counter[str] = field(default_factory=Counter)
    streams_refused: int = 0
    frames_refused: int = 0
    media_frames_dropped: int = 0  # caller audio dropped because a call fell behind
    llm_server_restarts: int = 0  # embedded LLM servers started again after dying


@dataclass
class Services:
    settings: Settings
    tokens: StreamTokens
    admission: Admission
    rate_limit: CallerRateLimit
    writer: GroupCommitWriter | None = None
    engines: Engines | None = None
    llm_servers: list[EmbeddedServer] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    # Told of each call as its stream starts (its recorder, its live Heard), on the loop:
    # the place for whatever watches live calls (the tests' and benches' harness reads
    # each call's clock origin and live view from here).
    call_observers: list[Callable[[CallRecorder, LiveHeard], None]] = field(default_factory=list)
    # Each call's supervisor, until its media stream has finished (the supervisor has
    # stopped and the socket is closed): a drain tells them to say goodbye and waits for
    # the sockets to close with 1000 before the server would close them with 1012; shutting
    # down waits for each to record its call's end.
    supervisors: dict[str, pykka.ActorRef[Any]] = field(default_factory=dict)
    draining: bool = False  # shutting down: no new call is admitted
    instance_id: str = field(default_factory=new_instance_id)  # named in each CallStarted
    lease: LeaseKeeper | None = None
    # Signs the requests to the agent's tools; the bundled booking service checks it.
    tools_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    booking: BookingService | None = None  # the bundled booking tool, under /tools/
    postcall: PostCallSender | None = None  # EARSHOT_POSTCALL_URL's deliveries
    _llm_watch: asyncio.Task[None] | None = None
    _postcall_task: asyncio.Task[None] | None = None

    def call_began(
        self, recorder: CallRecorder, live: LiveHeard, supervisor: pykka.ActorRef[Any]
    ) -> None:
        self.admission.stream_started(recorder.call_sid)
        self.supervisors[recorder.call_sid] = supervisor
        for observe in self.call_observers:
            observe(recorder, live)

    def call_finished(self, call_sid: str) -> None:
        self.admission.call_ended(call_sid)
        self.supervisors.pop(call_sid, None)

    def calls_in_progress(self) -> list[pykka.ActorRef[Any]]:
        """The supervisors of the calls whose media stream is still open."""
        return list(self.supervisors.values())

    async def end_calls(self, reason: str, wait_s: float = 5.0) -> None:
        """Every call still going ends now, with ``reason`` recorded as its end (each
        supervisor records it before it stops, so the store has it before it closes)."""
        for supervisor in self.calls_in_progress():
            with contextlib.suppress(pykka.ActorDeadError):
                supervisor.tell(StreamStopped(reason))
        await self.calls_ended(wait_s)

    async def calls_ended(self, wait_s: float) -> bool:
        """Wait up to ``wait_s`` for every call in progress to end; True if they all did."""
        deadline = time.monotonic() + wait_s
        while self.calls_in_progress() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not self.calls_in_progress()

    @classmethod
    def for_settings(cls, settings: Settings) -> Services:
        return cls(
            settings,
            StreamTokens(
                settings.stream_secret or secrets.token_bytes(32), settings.stream_token_ttl_s
            ),
            Admission(settings.max_calls, settings.stream_token_ttl_s),
            CallerRateLimit(settings.calls_per_number, settings.calls_window_s),
            tools_secret=settings.tools_secret or secrets.token_bytes(32),
        )

    async def start(self) -> None:
        # The pacer shares the GIL with the actors' threads. CPython lets a busy thread
        # keep the GIL for 5 ms by default, which made 20 ms frames late by up to 26 ms
        # (bench/audio_path.py); a 0.5 ms switch interval bounds that wait.
        sys.setswitchinterval(self.settings.gil_switch_interval_s)
        log.info("applying migrations to %s", self.settings.db_url)
        await upgrade_async(self.settings.db_url)
        self._engine = create_engine(self.settings.db_url)
        store = EventStore(self._engine, self.settings.master_key())
        self.booking = BookingService(self._engine, self.tools_secret)
        if self.settings.postcall_url:
            self.postcall = PostCallSender(
                PostCallOutbox(store, self.instance_id),
                self.settings.postcall_url,
                self.tools_secret,
                self.settings.postcall_retry_s,
            )
            self._postcall_task = asyncio.create_task(self.postcall.run(), name="postcall")
        self.writer = GroupCommitWriter(store)
        await self.writer.start()
        self.lease = LeaseKeeper(
            Leases(self._engine, self.instance_id, os.getpid()),
            store,
            self.settings.lease_s,
            given_up=lambda: self.end_calls(LOST),
        )
        await self.lease.start()  # and the calls a killed gateway left open are ended
        settings = self.settings
        tts: SpeechEngine
        if settings.tts_model is not None:
            from actors.engines.csm_synthesis import CsmEngine  # imports torch: only when asked for

            tts = await asyncio.to_thread(CsmEngine, settings.tts_model)
        else:
            tts = await asyncio.to_thread(HibariEngine, settings.tts_voice)
        vad = await asyncio.to_thread(SileroVadModel)
        stt, llm, tools = None, None, None
        if settings.converse:
            stt = await asyncio.to_thread(WhisperEngine)
            at_once = VLLM_BATCH  # a served model batches requests
            if settings.llm_url is not None:
                urls = [settings.llm_url]
            else:
                at_once = 1  # llama.cpp's server: one request at a time
                cores = os.cpu_count() or 2
                servers = settings.embedded_llm_servers or max(1, cores // 2)
                threads = max(1, cores // servers)
                self.llm_servers = [EmbeddedServer(threads=threads) for _ in range(servers)]
                await asyncio.gather(*(asyncio.to_thread(s.start) for s in self.llm_servers))
                self._llm_watch = asyncio.create_task(self._revive_llm_servers(), name="llm")
                urls = [server.url for server in self.llm_servers]
            tools = Tools(settings.agent, ToolRunner(self.tools_secret, settings.public_url))
            for url in urls:  # the prompt's beginning every reply shares: persona and tools
                await asyncio.to_thread(
                    warm_up, url, settings.agent.system_prompt, settings.llm_model, tools.schemas
                )
            llm = LlmEndpoints(urls, requests_at_once=at_once)
        fixed_lines = FixedLines(tts)
        await asyncio.to_thread(
            fixed_lines.prepare,
            HOLD_LINE,
            FALLBACK_LINE,
            FAILED_GOODBYE,
            DRAIN_GOODBYE,
            TIME_LIMIT_GOODBYE,
            settings.agent.goodbye,  # the agent's own closing lines: said as the call ends
            settings.agent.transferring,
            settings.agent.silence.goodbye,
            settings.agent.filler,
        )
        self.engines = Engines(
            tts=tts,
            vad=vad,
            stt=stt,
            llm=llm,
            fixed_lines=fixed_lines,
            llm_model=settings.llm_model,
            agent=settings.agent,
            tools=tools,
            max_reply_tokens=settings.max_reply_tokens,
            context_budget_tokens=settings.context_budget_tokens,
            stt_timeout_s=settings.stt_timeout_s,
            llm_timeout_s=settings.llm_timeout_s,
            tts_timeout_s=settings.tts_timeout_s,
            stt_rolling_every_ms=settings.stt_rolling_every_ms,
            preemptive=settings.preemptive,
            end_of_turn_ms=settings.end_of_turn_ms,
            liveness_bound_s=settings.liveness_bound_s,
            liveness_give_up_s=settings.liveness_give_up_s,
        )
        log.info("gateway ready at %s", self.settings.public_url)

    async def _revive_llm_servers(self) -> None:
        """An embedded LLM server that dies is started again within a second or two:
        meanwhile the calls hear the stage's apology, and afterwards their replies."""
        while True:
            await asyncio.sleep(1.0)
            for server in self.llm_servers:
                try:
                    if await asyncio.to_thread(server.revive_if_dead):
                        self.counters.llm_server_restarts += 1
                except Exception:
                    log.exception("the embedded LLM server could not be restarted")

    async def stop(self) -> None:
        if self._llm_watch is not None:
            self._llm_watch.cancel()
        if self._postcall_task is not None:
            self._postcall_task.cancel()
        await self.end_calls("gateway stopped")
        if self.writer is not None:
            await self.writer.close()
        if self.lease is not None:
            await self.lease.stop()
        await self._engine.dispose()
        if self.engines is not None and self.engines.tools is not None:
            self.engines.tools.runner.close()
        for server in self.llm_servers:
            server.stop()
