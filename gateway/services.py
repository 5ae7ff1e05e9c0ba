"""What the gateway process shares among its calls: store writer, engines, tokens, counters."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, field

from actors.speech_synthesis import HibariEngine
from actors.vad import SileroVadModel
from events.database import create_engine, upgrade_async
from events.group_commit import GroupCommitWriter
from events.recorder import CallRecorder
from events.store import EventStore
from gateway.config import Settings
from gateway.stream_tokens import StreamTokens

log = logging.getLogger(__name__)


@dataclass
class Counters:
    calls_started: int = 0
    calls_active: int = 0
    webhooks_refused: int = 0
    streams_refused: int = 0
    frames_refused: int = 0


@dataclass
class Services:
    settings: Settings
    tokens: StreamTokens
    writer: GroupCommitWriter | None = None
    tts: HibariEngine | None = None
    vad: SileroVadModel | None = None
    counters: Counters = field(default_factory=Counters)
    recorders: dict[str, CallRecorder] = field(default_factory=dict)  # this process's calls

    @classmethod
    def for_settings(cls, settings: Settings) -> Services:
        return cls(settings, StreamTokens(settings.stream_secret, settings.stream_token_ttl_s))

    async def start(self) -> None:
        # The pacer shares the GIL with the actors' threads. CPython lets a busy thread
        # keep the GIL for 5 ms by default, which made 20 ms frames late by up to 26 ms
        # (bench/audio_path.py); a 0.5 ms switch interval bounds that wait.
        sys.setswitchinterval(self.settings.gil_switch_interval_s)
        log.info("applying migrations to %s", self.settings.db_url)
        await upgrade_async(self.settings.db_url)
        self._engine = create_engine(self.settings.db_url)
        self.writer = GroupCommitWriter(EventStore(self._engine))
        await self.writer.start()
        self.tts = await asyncio.to_thread(HibariEngine, self.settings.tts_voice)
        self.vad = await asyncio.to_thread(SileroVadModel)
        log.info("gateway ready at %s", self.settings.public_url)

    async def stop(self) -> None:
        if self.writer is not None:
            await self.writer.close()
        await self._engine.dispose()
