"""A simulated caller that dials the gateway exactly as Twilio would, and records the truth.

It signs and posts the voice webhook, follows the TwiML to the Media Stream,
sends ``connected``, ``start`` and then a 20 ms ``media`` frame every 20 ms (the
caller's speech from a script, silence otherwise). It plays the agent's audio
the way Twilio's buffer does: in order, in real time, in whole 20 ms packets on a
clock of its own (``TwilioPlayer``); a ``mark`` echoes when the audio before it
has played (at once if nothing is queued); a ``clear`` drops what is queued (the
packet playing plays out) and echoes the pending marks at once.
Both directions can be delayed, with jitter, without reordering (TCP).

The truth it records (``Truth``): where the play head was when each clear took
effect, on the gateway's outbound axis; what was played when, as a WAV; and per
caller utterance, the voice-to-voice latency.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import random
import time
import wave
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import msgspec
import numpy as np
import websockets
from twilio.request_validator import RequestValidator

from actors.core.audio_formats import BYTES_PER_MS, MULAW_FRAME_BYTES
from actors.core.playback_clock import PACKET_MS
from actors.core.twilio_stream import (
    ConnectedMessage,
    DtmfInfo,
    DtmfMessage,
    MarkInfo,
    MarkMessage,
    MediaFormat,
    MediaInfo,
    MediaMessage,
    StartInfo,
    StartMessage,
    StopInfo,
    StopMessage,
)
from events.mulaw import MULAW_DECODE

log = logging.getLogger(__name__)

SILENCE = b"\xff" * MULAW_FRAME_BYTES
# After its stop, how long the caller waits for the stream to close (its last messages read).
HANG_UP_CLOSE_S = 2.0


@dataclass(frozen=True)
class Network:
    """One-way delay of each direction, with uniform jitter of +/- ``jitter_ms``."""

    one_way_ms: float = 0.0
    jitter_ms: float = 0.0
    seed: int = 1


@dataclass
class Utterance:
    """Something the caller says: mu-law 8 kHz audio, and when.

    ``at_s``: seconds after the stream starts; ``cut_in_after_agent_ms``: once
    that much agent audio has played since the caller last spoke;
    ``after_agent_quiet_ms``: once the agent has answered since the caller last
    spoke and then been silent that long. With a ``digit`` (``Utterance.key``) the
    caller presses that key instead of speaking (a Media Streams ``dtmf`` message).
    """

    mulaw: bytes
    at_s: float | None = None
    cut_in_after_agent_ms: float | None = None
    after_agent_quiet_ms: float | None = None
    text: str = ""
    digit: str = ""

    @classmethod
    def key(cls, digit: str, **when: float) -> Utterance:
        return cls(b"", text=f"(presses {digit})", digit=digit, **when)


@dataclass
class ClearTruth:
    at: float  # when the clear took effect (caller's monotonic clock)
    head_ms: float  # the play head then, on the gateway's outbound axis
    queued_ms: float  # what it dropped


@dataclass
class Truth:
    call_sid: str = ""
    stream_sid: str = ""
    clears: list[ClearTruth] = field(default_factory=list)
    played: list[tuple[float, float, float]] = field(default_factory=list)  # (t0, from_ms, to_ms)
    marks_echoed: int = 0
    utterances: list[tuple[float, float]] = field(default_factory=list)  # (start, end) times
    speech: list[tuple[float, float]] = field(default_factory=list)  # voiced (onset, end) times
    max_socket_lead_ms: float = 0.0
    started_at: float = 0.0
    outbound: bytearray = field(default_factory=bytearray)
    close_code: int | None = None  # set when the gateway closed the stream (ended the call)
    keys: list[tuple[float, str]] = field(default_factory=list)  # (when, digit) pressed
    # Once the gateway ended the stream: the TwiML its <Connect action> URL answered, what
    # Twilio would do next (<Hangup/>, or <Dial> for a transfer).
    after_stream: str | None = None
    after_stream_error: str | None = None  # the action URL did not answer: why
    # The caller hung up at ``hang_up_after_s`` (the cap), not because the script was done:
    # how many of its lines were never said, and whether the agent was still talking.
    capped: bool = False
    lines_unsaid: int = 0
    agent_talking_at_cap: bool = False


class _Link:
    """Delivers messages in order, each after the network's delay."""

    def __init__(self, network: Network, deliver: Callable[[str], Awaitable[None] | None]) -> None:
        self._network = network
        self._rng = random.Random(network.seed)
        self._deliver = deliver
        self._last_due = 0.0
        self._undelivered = 0  # sent, not yet handed to ``deliver`` (or in its hands)
        self._queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    def send(self, message: str) -> None:
        jitter = self._rng.uniform(-self._network.jitter_ms, self._network.jitter_ms)
        delay = max(0.0, self._network.one_way_ms + jitter) / 1000.0
        self._last_due = max(self._last_due, time.monotonic() + delay)
        self._queue.put_nowait((self._last_due, message))
        self._undelivered += 1

    async def _run(self) -> None:
        while True:
            due, message = await self._queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                result = self._deliver(message)
                if result is not None:
                    await result
            except websockets.ConnectionClosed:
                return  # the other side hung up: nothing more can be delivered
            finally:
                self._undelivered -= 1

    async def drain(self) -> None:
        """Until every message sent is delivered (or the other side has hung up)."""
        while self._undelivered and not self._task.done():
            await asyncio.sleep(0.005)

    def cancel(self) -> None:
        self._task.cancel()


class TwilioPlayer:
    """Twilio's playout buffer for one stream.

    Playback advances in whole packets (``packet_ms``) on a clock that ticks every packet
    from ``phase_s``, whatever the stream does: audio reaching an empty buffer starts at
    the next tick; a packet once started is on its way to the phone and plays to its end,
    so a clear takes effect at the end of the packet playing; a mark echoes as the
    packet before it ends. With ``packet_ms=0`` playback is continuous (arrival starts
    it, a clear stops it at once): the model before the packet grid was measured.
    """

    def __init__(
        self,
        truth: Truth,
        echo: Callable[[str], None],
        packet_ms: float = PACKET_MS,
        phase_s: float = 0.0,
    ) -> None:
        self.truth = truth
        self._echo = echo
        self.packet_ms = packet_ms
        self.phase_s = phase_s
        self.received_ms = 0.0  # every media ms ever received: the outbound axis
        self.buffer_end_ms = 0.0
        self._run_t0 = 0.0  # when the run's audio from ``_run_from_ms`` starts playing
        self._run_from_ms = 0.0
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.agent_played_ms = 0.0  # since the counter was last reset
        self.quiet_since: float | None = None

    def head_ms(self, t: float) -> float:
        """How far playback has gone, past recall: with packets, the end of the one playing."""
        elapsed_ms = (t - self._run_t0) * 1000.0
        if self.packet_ms:
            if elapsed_ms < 0:
                return self._run_from_ms
            elapsed_ms = (math.floor(elapsed_ms / self.packet_ms) + 1) * self.packet_ms
        return min(self._run_from_ms + elapsed_ms, self.buffer_end_ms)

    def _sounded_ms(self, t: float) -> float:
        """How far the caller has heard, in continuous time."""
        return min(self._run_from_ms + max(t - self._run_t0, 0.0) * 1000.0, self.buffer_end_ms)

    def _next_tick(self, t: float) -> float:
        if not self.packet_ms:
            return t
        period = self.packet_ms / 1000.0
        return self.phase_s + math.ceil((t - self.phase_s) / period - 1e-9) * period

    def played_since_reset(self, t: float) -> float:
        """Agent audio played since the counter was last reset, the current run included."""
        return self.agent_played_ms + max(self.head_ms(t) - self._run_from_ms, 0.0)

    def idle(self, t: float) -> bool:
        return self.head_ms(t) >= self.buffer_end_ms

    def on_media(self, payload: bytes, t: float) -> None:
        ms = len(payload) / BYTES_PER_MS
        if self.idle(t):  # buffer was empty: playback (re)starts at the next tick
            self._close_run(t)
            self._run_t0, self._run_from_ms = self._next_tick(t), self.received_ms
            self.buffer_end_ms = self.received_ms
        self.truth.outbound.extend(payload)
        self.received_ms += ms
        self.buffer_end_ms += ms
        self.truth.max_socket_lead_ms = max(
            self.truth.max_socket_lead_ms, self.buffer_end_ms - self.head_ms(t)
        )

    def _close_run(self, t: float) -> None:
        """Record what has played of the run up to ``t``; the rest goes on from there."""
        end = self.head_ms(t)
        if end > self._run_from_ms:
            self.truth.played.append((self._run_t0, self._run_from_ms, end))
            self.agent_played_ms += end - self._run_from_ms
            self._run_t0 += (end - self._run_from_ms) / 1000.0  # still on the packet clock
            self._run_from_ms = end

    def on_mark(self, name: str, t: float) -> None:
        at_ms = self.buffer_end_ms
        if self._sounded_ms(t) >= at_ms:
            self._fire(name)
            return
        due = self._run_t0 + (at_ms - self._run_from_ms) / 1000.0
        loop = asyncio.get_running_loop()
        self._timers[name] = loop.call_at(loop.time() + (due - time.monotonic()), self._fire, name)

    def _fire(self, name: str) -> None:
        self._timers.pop(name, None)
        self.truth.marks_echoed += 1
        self._echo(name)

    def on_clear(self, t: float) -> None:
        head = self.head_ms(t)
        self.truth.clears.append(ClearTruth(t, head, self.buffer_end_ms - head))
        self._close_run(t)
        self.buffer_end_ms = head
        self._run_from_ms = head
        for name, timer in list(self._timers.items()):  # every pending mark echoes now
            timer.cancel()
            self._fire(name)

    def finish(self, t: float) -> None:
        self._close_run(t)


def sign_and_post_webhook(
    base_url: str,
    public_url: str,
    auth_token: str,
    params: dict[str, str],
    path: str = "/twilio/voice",
) -> str:
    """POST a webhook as Twilio does (form body, X-Twilio-Signature over the public URL);
    returns the TwiML answered."""
    signature = RequestValidator(auth_token).compute_signature(public_url + path, params)
    request = Request(
        base_url + path,
        data=urlencode(params).encode(),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    with urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def start_message(
    sequence: str, call_sid: str, stream_sid: str, account_sid: str, parameters: dict[str, str]
) -> str:
    """A stream's ``start`` as Twilio sends it, carrying the TwiML's ``<Parameter>`` values."""
    start = StartInfo(
        streamSid=stream_sid,
        accountSid=account_sid,
        callSid=call_sid,
        mediaFormat=MediaFormat("audio/x-mulaw", 8000, 1),
        tracks=("inbound",),
        customParameters=parameters,
    )
    return _json(StartMessage(sequence, start, stream_sid))


def connected_message() -> str:
    return _json(ConnectedMessage())


def _json(message: msgspec.Struct) -> str:
    """A Media Streams message as Twilio writes it, from the protocol's own structs."""
    return msgspec.json.encode(message).decode()


class CallRejected(Exception):
    """The gateway answered ``<Reject>``: the caller hears a busy tone (or a fast busy)."""


def parse_twiml(twiml: str) -> tuple[str, dict[str, str]]:
    """The Stream URL and its Parameters from ``<Connect><Stream>`` TwiML; ``CallRejected``
    for ``<Reject>``."""
    document = ET.fromstring(twiml)
    reject = document.find("./Reject")
    if reject is not None:
        raise CallRejected(f"call rejected: {reject.get('reason', 'rejected')}")
    stream = document.find("./Connect/Stream")
    if stream is None:
        raise ValueError(f"no <Connect><Stream> in TwiML: {twiml[:200]}")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), parameters


def connect_action_path(twiml: str, public_url: str) -> str | None:
    """The path of ``<Connect action>``: where Twilio asks what to do once the stream ends."""
    connect = ET.fromstring(twiml).find("./Connect")
    action = connect.get("action") if connect is not None else None
    if not action:
        return None
    return action[len(public_url) :] if action.startswith(public_url) else action


class SimulatedCaller:
    def __init__(
        self,
        base_url: str,
        *,
        public_url: str | None = None,
        auth_token: str,
        script: list[Utterance],
        network: Network = Network(),
        hang_up_after_s: float = 10.0,
        call_sid: str | None = None,
        linger_s: float | None = None,
        done_quiet_s: float | None = None,
        from_number: str | None = None,
        stream_base_url: str | None = None,
        packet_ms: float = PACKET_MS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Where the media stream connects: behind a load balancer, maybe another process
        # than the one that answered the webhook.
        self.stream_base_url = (stream_base_url or base_url).rstrip("/")
        self.stream_parameters: dict[str, str] = {}  # the TwiML's, sent in the start
        self.public_url = (public_url or base_url).rstrip("/")
        self.auth_token = auth_token
        self.script = list(script)
        self.network = network
        self.hang_up_after_s = hang_up_after_s
        self.packet_ms = packet_ms  # Twilio's playout packets (0: continuous playback)
        self.linger_s = linger_s  # hang up this long after the script's last line, if set
        # Hang up once the script is said and answered and the agent has been quiet this long.
        self.done_quiet_s = done_quiet_s
        suffix = f"{random.getrandbits(128):032x}"
        self.truth = Truth(call_sid=call_sid or "CA" + suffix, stream_sid="MZ" + suffix)
        # Each simulated caller has a number of its own (a gateway limits calls per number).
        self.from_number = from_number or f"+1500555{random.randrange(10_000):04d}"
        self._sequence = 0
        self._hung_up = False  # the caller has sent its stop

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def run(self) -> Truth:
        truth = self.truth
        params = {
            "AccountSid": "AC" + "0" * 32,
            "ApiVersion": "2010-04-01",
            "CallSid": truth.call_sid,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": self.from_number,
            "To": "+15005550001",
            "Caller": self.from_number,
            "Called": "+15005550001",
        }
        twiml = await asyncio.to_thread(
            sign_and_post_webhook, self.base_url, self.public_url, self.auth_token, params
        )
        url, parameters = parse_twiml(twiml)
        self.stream_parameters = parameters
        # Twilio dials the public wss:// URL; locally we reach the same path directly.
        path = url.split("/", 3)[3] if url.count("/") >= 3 else "twilio/media"
        ws_url = self.stream_base_url.replace("http", "ws", 1) + "/" + path
        async with websockets.connect(ws_url, max_size=1 << 20) as ws:
            up = _Link(self.network, ws.send)
            # Twilio's packet clock runs on its own: its phase is anyone's guess.
            phase_s = random.Random(self.network.seed + 2).uniform(0.0, self.packet_ms / 1000.0)
            player = TwilioPlayer(truth, lambda name: self._echo(up, name), self.packet_ms, phase_s)
            down = _Link(
                Network(self.network.one_way_ms, self.network.jitter_ms, self.network.seed + 1),
                lambda message: self._on_agent_message(player, message),
            )
            up.send(connected_message())
            up.send(
                start_message(
                    self._next_sequence(),
                    truth.call_sid,
                    truth.stream_sid,
                    params["AccountSid"],
                    parameters,
                )
            )
            receiver = asyncio.create_task(self._receive(ws, down))
            try:
                await self._speak(up, player)
            finally:
                # From here a close is the answer to the caller's hang-up, not the gateway
                # ending the call: on a loaded machine it can come back before we stop
                # listening, and a capped call was once reported as "the gateway closed".
                self._hung_up = True
                player.finish(time.monotonic())
                stop = StopInfo(params["AccountSid"], truth.call_sid)
                up.send(_json(StopMessage(self._next_sequence(), truth.stream_sid, stop)))
                await up.drain()
                await ws.close()  # as Twilio does once its stop is sent: the stream is over
                await asyncio.wait({receiver}, timeout=HANG_UP_CLOSE_S)
                receiver.cancel()
                up.cancel()
                down.cancel()
        action = connect_action_path(twiml, self.public_url)
        if truth.close_code is not None and action is not None:  # the gateway ended the stream
            params["CallStatus"] = "in-progress"
            try:
                truth.after_stream = await asyncio.to_thread(
                    sign_and_post_webhook,
                    self.base_url,
                    self.public_url,
                    self.auth_token,
                    params,
                    action,
                )
            except OSError as exc:  # as Twilio finds it: nobody answered (a gateway stopped)
                truth.after_stream_error = str(getattr(exc, "reason", exc))
        return truth

    def _key_message(self, digit: str) -> str:
        dtmf = DtmfInfo(digit=digit, track="inbound_track")
        return _json(DtmfMessage(self._next_sequence(), self.truth.stream_sid, dtmf))

    def _echo(self, up: _Link, name: str) -> None:
        """Twilio echoes a mark as its audio plays; once the caller has hung up, nothing."""
        if not self._hung_up:
            mark = MarkMessage(self._next_sequence(), self.truth.stream_sid, MarkInfo(name))
            up.send(_json(mark))

    async def _receive(self, ws: websockets.ClientConnection, down: _Link) -> None:
        try:
            async for message in ws:
                down.send(message if isinstance(message, str) else message.decode())
        except websockets.ConnectionClosed:
            pass
        if not self._hung_up:
            self.truth.close_code = ws.close_code

    def _on_agent_message(self, player: TwilioPlayer, text: str) -> None:
        message = json.loads(text)
        now = time.monotonic()
        event = message.get("event")
        if event == "media":
            player.on_media(base64.b64decode(message["media"]["payload"]), now)
        elif event == "mark":
            player.on_mark(message["mark"]["name"], now)
        elif event == "clear":
            player.on_clear(now)

    async def _speak(self, up: _Link, player: TwilioPlayer) -> None:
        """Send a 20 ms frame every 20 ms, on a fixed schedule, for the whole call."""
        truth = self.truth
        start = truth.started_at = time.monotonic()
        pending = list(self.script)
        speaking: bytes = b""
        speech_started = 0.0
        frame_index = 0
        quiet_since: float | None = None
        while True:
            now = time.monotonic()
            if truth.close_code is not None:
                break
            if now - start >= self.hang_up_after_s:
                truth.capped = True
                truth.lines_unsaid = len(pending) + (1 if speaking else 0)
                truth.agent_talking_at_cap = not player.idle(now)
                break
            if not speaking and pending and self._due(pending[0], player, now - start, now):
                utterance = pending.pop(0)
                player.finish(now)
                player.agent_played_ms = 0.0
                if utterance.digit:
                    up.send(self._key_message(utterance.digit))
                    truth.keys.append((now, utterance.digit))
                else:
                    speaking = utterance.mulaw
                    speech_started = now
                    onset, end = voiced_span_s(speaking)
                    truth.speech.append((now + onset, now + end))
            if speaking:
                frame, speaking = speaking[:MULAW_FRAME_BYTES], speaking[MULAW_FRAME_BYTES:]
                frame = frame.ljust(MULAW_FRAME_BYTES, b"\xff")
                if not speaking:
                    truth.utterances.append((speech_started, now + 0.02))
                    # "Since the caller last spoke" counts from the end of their words: what
                    # played over them (before a barge-in's clear) answered nothing.
                    player.finish(now)
                    player.agent_played_ms = 0.0
            else:
                frame = SILENCE
                if (
                    self.linger_s is not None
                    and not pending
                    and truth.utterances
                    and now - truth.utterances[-1][1] > self.linger_s
                ):
                    break
                answered = not pending and player.played_since_reset(now) > 0
                quiet_since = (quiet_since or now) if answered and player.idle(now) else None
                done_quiet = None if quiet_since is None else now - quiet_since
                if self.done_quiet_s is not None and (done_quiet or 0.0) >= self.done_quiet_s:
                    break
            media = MediaInfo(
                track="inbound",
                chunk=str(frame_index + 1),
                timestamp=str(frame_index * 20),
                payload=base64.b64encode(frame).decode(),
            )
            up.send(_json(MediaMessage(self._next_sequence(), media, truth.stream_sid)))
            frame_index += 1
            await asyncio.sleep(max(0.0, start + frame_index * 0.02 - time.monotonic()))

    def _due(self, utterance: Utterance, player: TwilioPlayer, elapsed: float, now: float) -> bool:
        if utterance.at_s is not None:
            return elapsed >= utterance.at_s
        if utterance.cut_in_after_agent_ms is not None:
            return player.played_since_reset(now) >= utterance.cut_in_after_agent_ms
        if utterance.after_agent_quiet_ms is not None:
            spoke = player.played_since_reset(now) > 0
            if not player.idle(now) or not spoke:  # wait for the agent to answer, then finish
                player.quiet_since = None
                return False
            if player.quiet_since is None:
                player.quiet_since = now
            return (now - player.quiet_since) * 1000.0 >= utterance.after_agent_quiet_ms
        return True


def voice_to_voice_ms(truth: Truth) -> list[float]:
    """From the end of each caller utterance's voice to the agent's voice at the caller
    (the first audible 20 ms the caller then heard), if it came before the caller spoke
    again. Silence around the words, the caller's and the agent's, counts as waiting."""
    latencies = []
    for index, (_onset, end) in enumerate(truth.speech):
        next_onset = truth.speech[index + 1][0] if index + 1 < len(truth.speech) else math.inf
        heard = _first_audible_after(truth, end)
        if heard is not None and heard < next_onset:
            latencies.append((heard - end) * 1000.0)
    return latencies


# The VAD can hear a soft first sound ("Can…") before the loudness measure of
# ``voiced_span_s`` calls the utterance voiced: a clear that early still belongs to it.
ONSET_SLACK_S = 0.3


def stop_latencies_ms(truth: Truth) -> list[tuple[float, float]]:
    """Per clear: (the caller's voice onset of the utterance it cut into, the latency from
    that onset to the agent's audio stopping at the caller, at least 0)."""
    stops = []
    for clear in truth.clears:
        cut_into = [
            onset for onset, end in truth.speech if onset - ONSET_SLACK_S <= clear.at <= end
        ]
        if cut_into:
            stops.append((cut_into[-1], max(clear.at - cut_into[-1], 0.0) * 1000.0))
    return stops


def played_at(truth: Truth, out_ms: float) -> float | None:
    """When the caller heard the outbound stream's ``out_ms`` (None: it never played)."""
    for run_t0, from_ms, to_ms in truth.played:
        if from_ms <= out_ms <= to_ms:
            return run_t0 + (out_ms - from_ms) / 1000.0
    return None


def _first_audible_after(truth: Truth, t: float) -> float | None:
    for run_t0, from_ms, to_ms in sorted(truth.played):
        start_ms = max(from_ms, from_ms + (t - run_t0) * 1000.0)
        block = start_ms - (start_ms - from_ms) % 20.0  # whole 20 ms blocks of the run
        while block < to_ms:
            chunk = truth.outbound[int(block * BYTES_PER_MS) : int((block + 20) * BYTES_PER_MS)]
            if _audible(bytes(chunk)):
                return run_t0 + (max(block, start_ms) - from_ms) / 1000.0
            block += 20.0
    return None


AUDIBLE_DBFS = -40.0


def _audible(mulaw: bytes) -> bool:
    if not mulaw:
        return False
    pcm = MULAW_DECODE[np.frombuffer(mulaw, dtype=np.uint8)].astype(np.float64)
    return bool(20 * np.log10(np.sqrt(np.mean(pcm**2)) / 32768.0 + 1e-12) > AUDIBLE_DBFS)


def voiced_span_s(mulaw: bytes) -> tuple[float, float]:
    """Where the voice starts and ends in an utterance (seconds), by 20 ms frames."""
    frames = [mulaw[i : i + MULAW_FRAME_BYTES] for i in range(0, len(mulaw), MULAW_FRAME_BYTES)]
    loud = [i for i, frame in enumerate(frames) if _audible(frame)]
    if not loud:
        return 0.0, len(frames) * 0.02
    return loud[0] * 0.02, (loud[-1] + 1) * 0.02


def write_heard_wav(truth: Truth, path: Path) -> None:
    """What the caller heard, on the call's timeline, as a 8 kHz PCM16 WAV."""
    if not truth.played:
        end_s = 0.0
    else:
        end_s = max(t0 + (to - fr) / 1000.0 for t0, fr, to in truth.played) - truth.started_at
    timeline = np.zeros(int(max(end_s, 0.0) * 8000) + 1, dtype=np.int16)
    for t0, from_ms, to_ms in truth.played:
        chunk = MULAW_DECODE[
            np.frombuffer(
                bytes(truth.outbound[int(from_ms * BYTES_PER_MS) : int(to_ms * BYTES_PER_MS)]),
                dtype=np.uint8,
            )
        ]
        at = max(int((t0 - truth.started_at) * 8000), 0)
        timeline[at : at + len(chunk)] = chunk[: len(timeline) - at]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(timeline.tobytes())
