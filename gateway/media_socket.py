"""``WS /twilio/media``: admit a Media Stream, start its call's actors, feed them its frames.

The stream is admitted only after its ``start`` carries a valid stream token
and its ``CallStarted`` is durably stored (which also refuses a second start of
the same call). Until then no audio is processed. Afterwards every frame goes to
the call's Transport actor, stamped with the loop's time of receipt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pykka

from actors.audio_retention import RecordingConsent
from actors.call_supervisor import CallSupervisor
from actors.core.call_policy import Stage
from actors.core.liveness import FAILED_GOODBYE
from actors.core.twilio_stream import CloseStream, Refused, Started, TwilioStreamProtocol
from actors.messages import InboundFrame, ReplyPlayed, StageError, StreamStopped
from actors.supervised import Pulse
from actors.transport import InboundBacklog
from events.catalogue import CallStarted
from events.recorder import CallRecorder
from events.store import ConcurrencyConflict
from gateway.playout import Playout
from gateway.services import Services
from gateway.stream_tokens import TokenRefused
from gateway.watchdog import SupervisorWatchdog
from projections import heard as heard_projection
from projections.heard import Heard, LiveHeard

log = logging.getLogger(__name__)

START_ACK_WAIT_S = 1.0

START_TIMEOUT_S = 10.0

Receive = Any
Send = Any


async def _close(send: Send, code: int, reason: str) -> None:
    await send({"type": "websocket.close", "code": code, "reason": reason[:120]})


async def _await_start(
    receive: Receive, send: Send, protocol: TwilioStreamProtocol, services: Services
) -> Started | None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            message = await asyncio.wait_for(receive(), deadline - time.monotonic())
        except TimeoutError:
            log.warning("media stream refused: no start within %.0f s", START_TIMEOUT_S)
            await _close(send, 1008, "no start message")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        frame = (
            message.get("text") if message.get("text") is not None else message.get("bytes", b"")
        )
        for observation in protocol.receive(frame, time.monotonic()):
            if isinstance(observation, Started):
                return observation
            if isinstance(observation, CloseStream):
                await _close(send, observation.code, observation.reason)
                return None
            if isinstance(observation, Refused):
                services.counters.frames_refused += 1
                log.warning(
                    "media stream before start: refused frame (%s) %s",
                    observation.reason,
                    observation.detail,
                )


async def media_stream(
    scope: dict[str, Any], receive: Receive, send: Send, services: Services
) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    protocol = TwilioStreamProtocol(services.settings.refusal_burst)
    started = await _await_start(receive, send, protocol, services)
    if started is None:
        return
    try:
        services.tokens.redeem(started.custom_parameters.get("token"), started.call_sid)
    except TokenRefused as refusal:
        services.counters.streams_refused += 1
        log.warning(
            "media stream for call %s refused: token %s", started.call_sid[:64], refusal.reason
        )
        await _close(send, 1008, f"stream token {refusal.reason}")
        return
    assert services.writer is not None and services.engines is not None
    recorder = CallRecorder(started.call_sid, services.writer)
    agent, retain_audio = services.settings.agent, services.settings.retain_audio
    # The caller hears that the call is recorded before anything else is said.
    announcement = agent.consent_announcement if retain_audio else ""
    started_event = recorder.record(
        CallStarted,
        stream_sid=started.stream_sid,
        wall_time_unix=time.time(),
        account_sid=started.account_sid,
        from_number=started.custom_parameters.get("from", ""),
        to_number=started.custom_parameters.get("to", ""),
        recording_consent=retain_audio,
        gateway=services.instance_id,
        consent_announcement=announcement,
    )
    assert recorder.last_ack is not None
    try:
        # A stream for a call that already started is refused; but a store that is slow or
        # away must not keep a caller in silence: past a moment the call goes on, its
        # events queued behind the retrying writer.
        await asyncio.wait_for(recorder.last_ack.wait(), timeout=START_ACK_WAIT_S)
    except TimeoutError:
        log.warning("call %s: the event store is slow or away; the call goes on", started.call_sid)
    except ConcurrencyConflict:
        services.counters.streams_refused += 1
        log.warning("media stream for call %s refused: call already started", started.call_sid)
        await _close(send, 1008, "call already started")
        return
    live = LiveHeard(heard_projection.fold(Heard(), started_event))
    recorder.subscribe(live.fold)
    greeting = f"{announcement} {agent.greeting}".strip()
    await _run_call(receive, send, services, started, protocol, recorder, live, greeting)


async def _run_call(
    receive: Receive,
    send: Send,
    services: Services,
    started: Started,
    protocol: TwilioStreamProtocol,
    recorder: CallRecorder,
    live: LiveHeard,
    greeting: str,
) -> None:
    settings = services.settings
    supervisor_box: list[Any] = []
    watchdog_box: list[SupervisorWatchdog] = []

    async def send_text(text: str) -> None:
        await send({"type": "websocket.send", "text": text})

    def tell_supervisor(message: object) -> None:
        if supervisor_box:
            with contextlib.suppress(pykka.ActorDeadError):  # the call has just ended
                supervisor_box[0].tell(message)

    def reply_played(reply_id: int) -> None:
        if not (watchdog_box and watchdog_box[0].reply_played(reply_id)):
            tell_supervisor(ReplyPlayed(reply_id))

    def playout_failed(reply_id: int | None, error: str) -> None:
        tell_supervisor(StageError(Stage.PLAYOUT, reply_id, error))

    consent = (
        RecordingConsent(settings.agent.consent_announcement) if settings.retain_audio else None
    )

    playout = Playout(
        started.stream_sid,
        send_text,
        lambda code, reason: _close(send, code, reason),
        recorder,
        settings.playout_lead_ms,
        reply_played,
        consent=consent,
        on_failure=playout_failed,
    )
    playout.start()
    assert services.engines is not None
    backlog = InboundBacklog(settings.inbound_backlog_frames)
    pulse = Pulse()
    supervisor = CallSupervisor.start(
        recorder,
        protocol,
        playout,
        services.engines,
        greeting,
        backlog,
        live,
        consent,
        pulse,
    )
    supervisor_box.append(supervisor)
    services.call_began(recorder, live, supervisor)
    goodbye = services.engines.fixed_lines.get(FAILED_GOODBYE)
    watchdog = SupervisorWatchdog(supervisor, pulse, recorder, playout, live, goodbye)
    watchdog_box.append(watchdog)
    watching = asyncio.create_task(watchdog.run(), name=f"watchdog-{started.call_sid}")
    transport: Any = await asyncio.to_thread(supervisor.ask, "transport")
    services.counters.calls_started += 1
    services.counters.calls_active += 1
    reason = "stream closed"
    refused_before = protocol.refusals
    try:
        while not playout.closed:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                reason = f"websocket closed ({message.get('code', 1000)})"
                break
            text = (
                message.get("text")
                if message.get("text") is not None
                else message.get("bytes", b"")
            )
            if not backlog.admit(text):
                services.counters.media_frames_dropped += 1
                if backlog.dropped % 50 == 1:
                    log.warning(
                        "call %s: caller audio dropped, %d frames behind (%d dropped so far)",
                        started.call_sid,
                        backlog.queued - backlog.processed,
                        backlog.dropped,
                    )
                continue
            try:
                transport.tell(InboundFrame(text, time.monotonic()))
            except pykka.ActorDeadError:  # the call ended (Twilio's stop, or a failure)
                reason = "call ended"
                await _close(send, 1000, "call ended")
                break
    finally:
        if watchdog.ending:  # the caller hung up on its goodbye: it still records the end
            watchdog.caller_gone()
            await watching
        watching.cancel()
        services.counters.calls_active -= 1
        services.counters.frames_refused += protocol.refusals - refused_before
        if supervisor.is_alive():
            supervisor.tell(StreamStopped(reason))
        await playout.stop()
        services.call_finished(started.call_sid)
        log.info("call %s ended: %s", started.call_sid, reason)
