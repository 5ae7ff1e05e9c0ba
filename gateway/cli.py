"""The ``earshot`` command line: serve, replay, calls, db upgrade."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from events.codec import EventDecodeError
from events.database import create_engine, default_url, upgrade
from events.store import EventStore
from projections.replay import fold_all, to_json, to_text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="earshot", description="Earshot voice agent")
    parser.add_argument(
        "--db",
        default=None,
        help="database URL (default: EARSHOT_DB_URL or the embedded SQLite file)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="replay a stored call through the projections")
    replay.add_argument("call_sid")
    replay.add_argument("--json", action="store_true", help="print the replay document as JSON")
    replay.add_argument(
        "--at", type=int, default=None, metavar="SEQ", help="replay only up to event SEQ"
    )

    commands.add_parser("calls", help="list stored calls")

    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    return parser


async def _replay(url: str, call_sid: str, as_json: bool, at: int | None) -> int:
    engine = create_engine(url)
    try:
        events = await EventStore(engine).read_call(call_sid, up_to_seq=at)
    finally:
        await engine.dispose()
    if not events:
        print(f"no call {call_sid} in the store", file=sys.stderr)
        return 1
    view = fold_all(events)
    print(json.dumps(to_json(view, call_sid)) if as_json else to_text(view, call_sid))
    return 0


async def _calls(url: str) -> int:
    engine = create_engine(url)
    try:
        calls = await EventStore(engine).calls()
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url = args.db or default_url()
    try:
        if args.command == "db":
            upgrade(url)
            print(f"database at head: {url}")
            return 0
        upgrade(url)
        if args.command == "replay":
            return asyncio.run(_replay(url, args.call_sid, args.json, args.at))
        if args.command == "calls":
            return asyncio.run(_calls(url))
    except EventDecodeError as exc:
        print(f"earshot: cannot replay: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
