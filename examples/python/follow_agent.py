#!/usr/bin/env python3
"""Follow one agent's events on an agentwire server and print them, with every connection state change.

    /usr/bin/python3 examples/python/follow_agent.py --url http://127.0.0.1:8080 agent-7

Stop the server, start it again, pull the network: the script keeps going and prints what it missed
exactly once (or a snapshot when too much was missed). On exit it prints the position to resume from:

    /usr/bin/python3 examples/python/follow_agent.py agent-7 --since 42 --epoch 3f0c...

On a server with keys, give it a token that allows the agent (--token or AGENTWIRE_TOKEN):

    AGENTWIRE_TOKEN=$(build/agentwire token --secret-file secret --agents agent-7) \
        /usr/bin/python3 examples/python/follow_agent.py agent-7

Runs as-is from a checkout: it imports the client from clients/python next to it (or an installed one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Optional

# The client in this repository, so the script needs no install; an installed `agentwire` works too.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

from agentwire import (  # noqa: E402
    AgentwireClient,
    AgentwireError,
    Backoff,
    ConnectionState,
    Event,
    PhaseChanged,
    Progress,
    RequirementsSubmitted,
    Snapshot,
    StateChange,
    StreamDelta,
    StreamEnd,
    StreamStarted,
    Subscription,
    WorkflowCreated,
)


def describe(event: Event) -> str:
    """One line per event; the typed classes make each kind's interesting fields one attribute away."""
    if isinstance(event, WorkflowCreated):
        return f"workflow {event.workflow_id} created: {event.name!r} (phase {event.phase})"
    if isinstance(event, RequirementsSubmitted):
        items = len(event.items or [])
        return f"requirements for {event.workflow_id}: {event.text!r} (+{items} items)"
    if isinstance(event, PhaseChanged):
        why = f" — {event.reason}" if event.reason else ""
        return f"workflow {event.workflow_id}: {event.from_phase} -> {event.to_phase}{why}"
    if isinstance(event, Progress):
        message = f" {event.message}" if event.message else ""
        return f"progress {event.percent}%{message}" + (f" ({event.workflow_id})" if event.workflow_id else "")
    if isinstance(event, StreamStarted):
        return f"stream {event.stream_id} started ({event.workflow_id})"
    if isinstance(event, StreamDelta):
        return f"stream {event.stream_id} #{event.index}: {event.delta!r}"
    if isinstance(event, StreamEnd):
        return f"stream {event.stream_id} {event.status} after {event.deltas} deltas, {event.length} characters"
    if isinstance(event, Snapshot):
        return (f"SNAPSHOT as of seq {event.seq} (epoch {event.epoch}): {len(event.workflows)} workflows, "
                f"{len(event.streams)} open streams — events before it were not replayed")
    return f"{event.type} {json.dumps(event.data, ensure_ascii=False)}"


def show_state(change: StateChange) -> None:
    text = f"-- {change.state.value}: {change.reason}"
    if change.state is ConnectionState.RECONNECTING and change.delay is not None:
        text += f" (attempt {change.attempt}, next in {change.delay:.2f}s)"
    print(text, flush=True)


async def follow(args: argparse.Namespace) -> Optional[Subscription]:
    client = AgentwireClient(args.url, backoff=Backoff(base=args.backoff_base, max=args.backoff_max),
                             token=args.token or None)
    sub = client.subscribe(args.agent_id, since=args.since, epoch=args.epoch, on_state=show_state)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(sub.close()))

    async with sub:
        async for event in sub:
            when = event.ts[11:23] if event.ts else "--:--:--.---"
            print(f"[{event.seq:>6}] {when} {describe(event)}", flush=True)
    return sub


def main() -> int:
    parser = argparse.ArgumentParser(description="Print an agent's events from an agentwire server as they happen.")
    parser.add_argument("agent_id", help="the agent to follow, e.g. agent-7")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the server's HTTP address")
    parser.add_argument("--since", type=int, default=None, help="resume after this seq (0: all the server has)")
    parser.add_argument("--epoch", default=None, help="the epoch --since belongs to")
    parser.add_argument("--backoff-base", type=float, default=0.5, help="first reconnect delay cap, seconds")
    parser.add_argument("--backoff-max", type=float, default=30.0, help="largest reconnect delay, seconds")
    parser.add_argument("--token", default=os.environ.get("AGENTWIRE_TOKEN"),
                        help="for a server with keys: a token allowing the agent (default $AGENTWIRE_TOKEN), e.g. "
                             "from `agentwire token --secret-file F --agents AGENT`")
    args = parser.parse_args()
    try:
        sub = asyncio.run(follow(args))
    except AgentwireError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if sub is not None and sub.position is not None:
        seq, epoch = sub.position
        print(f"-- resume with: --since {seq} --epoch {epoch}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
