"""The ``earshot`` command line: serve, replay, calls, forget, purge, data-key, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import time
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from actors.core.playback_clock import PACKET_MS
from events.catalogue import AnyEvent
from events.codec import EventDecodeError
from events.database import (
    StoreUnavailable,
    check_readable,
    create_engine,
    default_url,
    describe,
    upgrade,
)
from events.encryption import FORGOTTEN, MasterKeyError, new_master_key_text
from events.leases import instances_alive
from events.store import EventStore, Forgetting
from gateway.agent_file import AgentFileError
from gateway.config import Settings
from projections import heard_audio, timeline
from projections.replay import fold_all, to_json, to_text

if TYPE_CHECKING:
    from gateway.simulate import Truth

log = logging.getLogger(__name__)

SIMULATE_CAP_S = 120.0  # a simulated call's longest run, whatever its script
SIMULATE_DONE_QUIET_S = 3.0  # the script said and answered: hang up after this much quiet


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="earshot", description="Earshot voice agent")
    parser.add_argument(
        "--db",
        default=None,
        help="database URL (default: EARSHOT_DB_URL or the embedded SQLite file)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=["debug", "info", "warning", "error"],
        help="diagnostics to print (default: info for serve, warning for the other commands)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="replay a stored call through the projections")
    replay.add_argument("call_sid")
    replay.add_argument("--json", action="store_true", help="print the replay document as JSON")
    replay.add_argument(
        "--at", type=int, default=None, metavar="SEQ", help="replay only up to event SEQ"
    )
    replay.add_argument(
        "--html",
        default=None,
        metavar="FILE",
        help="write the call page: one self-contained HTML file drawing the call",
    )
    replay.add_argument(
        "--audio",
        default=None,
        metavar="WAV",
        help="write what the caller heard (right) with what they said (left), if retained",
    )

    commands.add_parser("calls", help="list stored calls")

    forget = commands.add_parser(
        "forget", help="make a call's words, numbers and audio unreadable for good"
    )
    forget.add_argument("call_sid")
    purge = commands.add_parser("purge", help="forget every call older than an age")
    purge.add_argument(
        "--older-than", required=True, type=_age_s, metavar="AGE", help="e.g. 30d, 12h, 90m"
    )
    commands.add_parser("data-key", help="print a new master key for EARSHOT_DATA_KEY")

    serve = commands.add_parser("serve", help="run the gateway (applies pending migrations)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    tools = commands.add_parser("tools", help="the bundled tools, as a service of their own")
    tools_commands = tools.add_subparsers(dest="tools_command", required=True)
    tools_serve = tools_commands.add_parser(
        "serve", help="serve the booking tool alone (EARSHOT_TOOLS_SECRET shared with gateways)"
    )
    tools_serve.add_argument("--host", default="127.0.0.1")
    tools_serve.add_argument("--port", type=int, default=8010)

    simulate = commands.add_parser("simulate", help="call a running gateway as Twilio would")
    simulate.add_argument(
        "--url", default="http://127.0.0.1:8000", help="where the gateway listens"
    )
    simulate.add_argument("--public-url", default=None, help="the URL the gateway signs against")
    simulate.add_argument(
        "--say",
        action="append",
        dest="steps",
        default=[],
        type=lambda text: ("say", text),
        metavar="TEXT",
        help="something to say once the agent goes quiet (repeatable)",
    )
    simulate.add_argument(
        "--press",
        action="append",
        dest="steps",
        type=_keypad_digit,
        metavar="DIGIT",
        help="a key to press once the agent goes quiet (repeatable; in order with --say)",
    )
    simulate.add_argument(
        "--wav",
        action="append",
        default=[],
        metavar="FILE",
        help="a WAV file to say once the agent goes quiet (repeatable)",
    )
    simulate.add_argument(
        "--cut-in-after-ms",
        type=float,
        default=None,
        help="say the first line after this much agent audio, cutting in",
    )
    simulate.add_argument("--delay-ms", type=float, default=0.0, help="one-way network delay")
    simulate.add_argument("--jitter-ms", type=float, default=0.0, help="+/- jitter on the delay")
    simulate.add_argument(
        "--packet-ms",
        type=float,
        default=PACKET_MS,
        help="Twilio plays the agent in whole packets this long on a clock of its own "
        "(0: continuous playback)",
    )
    simulate.add_argument(
        "--max-duration",
        "--duration",
        dest="max_duration",
        type=float,
        default=SIMULATE_CAP_S,
        metavar="SECONDS",
        help="hang up by then even if the script is not done (it says so); "
        "otherwise the call ends once the script is said and answered",
    )
    simulate.add_argument("--out", default=None, help="write what the caller heard to this WAV")

    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    return parser


def _age_s(text: str) -> float:
    """An age like ``30d``, ``12h``, ``90m`` or ``45s``, in seconds."""
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    try:
        return float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an age like 30d, 12h or 90m") from None


def _store(engine: AsyncEngine) -> EventStore:
    """The store as the settings read it (with the master key, if there is one)."""
    return EventStore(engine, Settings.from_env().master_key())


async def _replay(
    url: str,
    call_sid: str,
    as_json: bool,
    at: int | None,
    audio: str | None = None,
    page: str | None = None,
) -> int:
    engine = create_engine(url)
    try:
        store = _store(engine)
        events = await store.read_call(call_sid, up_to_seq=at)
        forgotten_at = await store.forgotten_at(call_sid)
    finally:
        await engine.dispose()
    if not events:
        print(f"no call {call_sid} in the store", file=sys.stderr)
        return 1
    if forgotten_at is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(forgotten_at))
        print(f"call {call_sid} was forgotten at {when}: its words read {FORGOTTEN}")
    if audio is not None:
        return _write_heard_audio(events, Path(audio), call_sid)
    if page is not None:
        from gateway import call_page

        Path(page).write_text(call_page.render(list(events), call_sid, at))
        print(f"call {call_sid}: the call page is {page}")
        return 0
    view = fold_all(events)
    if not as_json:
        print(to_text(view, call_sid))
        return 0
    document = to_json(view, call_sid)  # and the call on one time axis, as its page draws it
    document["timeline"] = msgspec.to_builtins(timeline.build(events, call_sid))
    print(json.dumps(document))
    return 0


def _write_heard_audio(events: list[AnyEvent], path: Path, call_sid: str) -> int:
    try:
        heard = heard_audio.render(events)
    except heard_audio.NoAudioRetained as refusal:
        print(f"earshot: call {call_sid}: {refusal}", file=sys.stderr)
        return 2
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(heard_audio.RATE)
        out.writeframes(heard.stereo().astype("<i2").tobytes())
    seconds = len(heard.caller) / heard_audio.RATE
    print(f"call {call_sid}: {seconds:.1f} s, caller left, agent as heard right: {path}")
    return 0


async def _forget(url: str, call_sids: list[str] | None, older_than_s: float = 0.0) -> int:
    """Forget the named calls, or (None) every call older than ``older_than_s``."""
    engine = create_engine(url)
    try:
        store = _store(engine)
        if call_sids is None:
            call_sids = await store.calls_started_before(time.time() - older_than_s)
        outcomes = [(call_sid, await store.forget(call_sid)) for call_sid in call_sids]
    finally:
        await engine.dispose()
    for call_sid, outcome in outcomes:
        print(f"{call_sid}: {outcome}")
    if not outcomes:
        print("no calls that old")
    return 1 if any(outcome is Forgetting.UNKNOWN for _, outcome in outcomes) else 0


async def _calls(url: str) -> int:
    engine = create_engine(url)
    try:
        calls = await _store(engine).calls()
    finally:
        await engine.dispose()
    for call in calls:
        started = call.started
        caller = getattr(started, "from_number", "") or "-"
        ended = getattr(call.ended, "reason", "in progress")
        print(
            f"{call.call_sid}  from {caller}  {call.events} events  "
            f"{call.last_at_ms / 1000:.1f} s  {ended}"
        )
    if not calls:
        print("no calls stored")
    return 0


async def _gateways_alive(url: str) -> int:
    engine = create_engine(url)
    try:
        return await instances_alive(engine, time.time())
    finally:
        await engine.dispose()


def _tools_serve(args: argparse.Namespace, db_url: str) -> int:
    import uvicorn

    from gateway.booking_service import BookingService

    secret = Settings.from_env().tools_secret
    if secret is None:
        print(
            "earshot tools serve: set EARSHOT_TOOLS_SECRET (the same on the gateways): "
            "it signs every tool request",
            file=sys.stderr,
        )
        return 2
    upgrade(db_url)
    service = BookingService(create_engine(db_url), secret)
    uvicorn.run(service, host=args.host, port=args.port, lifespan="off", log_level="info")
    return 0


def _serve(args: argparse.Namespace, db_url: str) -> int:
    import uvicorn

    from gateway.app import EarshotApp
    from gateway.config import DEV_AUTH_TOKEN, refusal_to_serve
    from gateway.drain import DrainingServer

    settings = Settings.from_env(db_url=db_url)
    if "EARSHOT_PUBLIC_URL" not in os.environ:
        settings = Settings.from_env(db_url=db_url, public_url=f"http://{args.host}:{args.port}")
    refusal = refusal_to_serve(settings, args.host)  # before the store is touched
    if refusal is None:
        upgrade(db_url)  # here, so a bad store is one line before anything starts
        refusal = refusal_to_serve(settings, args.host, asyncio.run(_gateways_alive(db_url)))
    if refusal is not None:
        print(f"earshot serve: {refusal}", file=sys.stderr)
        return 2
    if settings.twilio_auth_token == DEV_AUTH_TOKEN:
        log.warning(
            "TWILIO_AUTH_TOKEN is not set: webhooks are checked against a development token"
        )
    app = EarshotApp(settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        ws="websockets-sansio",
        ws_max_size=settings.max_frame_bytes,
        lifespan="on",
        log_level="info",
    )
    # uvicorn re-raises the signal that stopped it once it is done: a drained gateway
    # has finished its work, so that SIGTERM exits 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    DrainingServer(config, app.services, settings.drain_s).run()
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from actors.core.audio_formats import phrase_to_mulaw
    from actors.engines.speech_synthesis import HibariEngine
    from gateway.simulate import (
        CallRejected,
        Network,
        SimulatedCaller,
        Utterance,
        voice_to_voice_ms,
        write_heard_wav,
    )

    script: list[Utterance] = []
    voice = HibariEngine() if any(kind == "say" for kind, _ in args.steps) else None
    for kind, value in args.steps:
        if kind == "press":
            script.append(Utterance.key(value, after_agent_quiet_ms=700.0))
            continue
        assert voice is not None
        phrase = voice.synthesize(value)
        script.append(
            Utterance(
                phrase_to_mulaw(phrase.samples, phrase.rate),
                text=value,
                after_agent_quiet_ms=700.0,
            )
        )
    for wav_path in args.wav:
        script.append(Utterance(_wav_to_mulaw(wav_path), text=wav_path, after_agent_quiet_ms=700.0))
    if script and args.cut_in_after_ms is not None:
        script[0].after_agent_quiet_ms = None
        script[0].cut_in_after_agent_ms = args.cut_in_after_ms
    caller = SimulatedCaller(
        args.url,
        public_url=args.public_url,
        auth_token=Settings.from_env().twilio_auth_token,
        script=script,
        network=Network(args.delay_ms, args.jitter_ms),
        packet_ms=args.packet_ms,
        hang_up_after_s=args.max_duration,
        done_quiet_s=SIMULATE_DONE_QUIET_S,
    )
    try:
        truth = asyncio.run(caller.run())
    except CallRejected as rejected:
        print(f"{rejected}: the gateway is at capacity (EARSHOT_MAX_CALLS); try again later")
        return 1
    except OSError as exc:  # refused, unreachable, reset (urllib's URLError is one)
        reason = getattr(exc, "reason", None) or exc
        print(f"earshot simulate: no gateway answering at {args.url}: {reason}", file=sys.stderr)
        return 2
    print(
        f"call {truth.call_sid}: heard {sum(t - f for _, f, t in truth.played) / 1000:.1f} s "
        f"of agent audio, {truth.marks_echoed} marks echoed, {len(truth.clears)} clears"
    )
    for clear in truth.clears:
        print(
            f"  clear at {clear.at - truth.started_at:.2f} s: playback stopped at "
            f"{clear.head_ms:.0f} ms of the outbound stream ({clear.queued_ms:.0f} ms dropped)"
        )
    for n, latency in enumerate(voice_to_voice_ms(truth), start=1):
        print(f"  turn {n}: voice-to-voice {latency:.0f} ms")
    if args.out:
        write_heard_wav(truth, Path(args.out))
        print(f"  what the caller heard: {args.out}")
    print(how_it_ended(truth, args.max_duration), file=sys.stderr if truth.capped else sys.stdout)
    print(f"replay it: earshot replay {truth.call_sid}")
    return 0


def _keypad_digit(text: str) -> tuple[str, str]:
    if len(text) != 1 or text not in "0123456789*#":
        raise argparse.ArgumentTypeError(f"{text!r} is not a key on a phone's keypad")
    return ("press", text)


def how_it_ended(truth: Truth, cap_s: float) -> str:
    """One line: who ended the call, and what Twilio was told to do next."""
    if truth.close_code is None and truth.capped:
        cut = []
        if truth.lines_unsaid:
            cut.append(f"{truth.lines_unsaid} line(s) of the script unsaid")
        if truth.agent_talking_at_cap:
            cut.append("the agent still talking")
        why = "; ".join(cut) or "the agent had not answered the last line"
        return f"warning: the call was cut at --max-duration {cap_s:.0f} s ({why})"
    if truth.close_code is None:
        return (
            "ended: the caller hung up, the script said and answered (the agent had not ended it)"
        )
    after = truth.after_stream or ""
    if truth.after_stream_error is not None:
        then = f"Twilio's request for what next went unanswered ({truth.after_stream_error})"
    elif "<Dial" in after:
        target = re.sub(r".*<(?:Number|Sip)>([^<]*)</(?:Number|Sip)>.*", r"\1", after, flags=re.S)
        then = f"transferred: Twilio dials {target}"
    elif "<Hangup" in after:
        then = "hung up"
    else:
        then = f"Twilio was told: {after or 'nothing (no <Connect action>)'}"
    return f"ended: the gateway closed the stream ({truth.close_code}); {then}"


def _wav_to_mulaw(path: str) -> bytes:
    import wave

    import numpy as np
    import soxr

    from actors.core.audio_formats import pcm16_to_mulaw

    with wave.open(path, "rb") as wav:
        rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        raise SystemExit(f"{path}: only 16-bit PCM WAV files are supported")
    samples = np.frombuffer(frames, dtype=np.int16).reshape(-1, channels)[:, 0]
    if rate != 8000:
        samples = soxr.resample(samples, rate, 8000, quality="HQ").astype(np.int16)
    return pcm16_to_mulaw(samples)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet = "info" if args.command in ("serve", "tools") else "warning"
    logging.basicConfig(  # the gateway logs what it does; a one-shot command only what fails
        level=(args.log_level or quiet).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    url = args.db or default_url()
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "serve":
            return _serve(args, url)
        if args.command == "tools":
            return _tools_serve(args, url)
        if args.command == "db":
            upgrade(url)
            print(f"database at head: {describe(url)}")
            return 0
        if args.command == "data-key":
            print(new_master_key_text())
            return 0
        asyncio.run(check_readable(url))  # reading never creates or migrates a store
        if args.command == "forget":
            return asyncio.run(_forget(url, [args.call_sid]))
        if args.command == "purge":
            return asyncio.run(_forget(url, None, args.older_than))
        if args.command == "replay":
            return asyncio.run(
                _replay(url, args.call_sid, args.json, args.at, args.audio, args.html)
            )
        if args.command == "calls":
            return asyncio.run(_calls(url))
    except (StoreUnavailable, AgentFileError) as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    except EventDecodeError as exc:
        print(f"earshot: cannot replay: {exc}", file=sys.stderr)
        return 2
    except MasterKeyError as exc:
        print(f"earshot: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
