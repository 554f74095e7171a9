"""Typed events: one dataclass per kind of envelope the server sends.

Every event the server numbers arrives as ``{"type", "agent_id", "seq", "ts", "data"}``, plus
``first_seq`` when it is a merged message (see :class:`Event`). :class:`Event` keeps exactly those fields,
so nothing the server sent is ever lost or reinterpreted (``data`` is the publisher's JSON as posted); the
subclasses only add read-only properties for the fields the workflow domain puts in ``data``, so code
can write ``ev.percent`` instead of ``ev.data["percent"]`` and an ``isinstance`` / ``match`` on the class
instead of comparing strings. A type this client does not know is still delivered, as a plain
:class:`Event` — publishers may send any type through the generic API.

The properties never raise: an event of a known type whose ``data`` lacks a field (a publisher used the
generic API with its own shape) answers ``None`` for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Type


def _field(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


# Typed reads: a value of the wrong JSON type reads as None, like a missing one.


def _str(data: Any, key: str) -> Optional[str]:
    value = _field(data, key)
    return value if isinstance(value, str) else None


def _int(data: Any, key: str) -> Optional[int]:
    value = _field(data, key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(data: Any, key: str) -> Optional[float]:
    value = _field(data, key)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _dict(data: Any, key: str) -> Optional[Dict[str, Any]]:
    value = _field(data, key)
    return value if isinstance(value, dict) else None


def _list(data: Any, key: str) -> Optional[List[Any]]:
    value = _field(data, key)
    return value if isinstance(value, list) else None


@dataclass(frozen=True)
class Event:
    """One numbered event of an agent's channel.

    ``seq`` numbers the channel's events 1, 2, 3 … without gaps within an epoch; ``ts`` is the server's
    ISO-8601 UTC timestamp (kept as the string the server sent; :attr:`time` parses it).

    ``first_seq``: the first seq this message stands for. Equal to ``seq`` for an ordinary event. Below it
    for a *merged* message: when a subscriber falls behind, the server may replace the event waiting last
    in its queue and the next one by a single message standing for every seq from ``first_seq`` to
    ``seq`` — consecutive deltas of one stream (:class:`StreamDelta`, texts concatenated, ``count`` of
    them) or progress of one workflow (:class:`Progress`, the latest value only). Leaving it out (or
    passing a value outside ``0..seq``) means ``seq``.
    """

    type: str
    agent_id: str
    seq: int
    ts: str
    data: Any
    first_seq: int = -1

    #: A stable name for the class of event (``"event"`` for types this client does not model).
    kind: ClassVar[str] = "event"

    def __post_init__(self) -> None:
        if not (0 <= self.first_seq <= self.seq):
            object.__setattr__(self, "first_seq", self.seq)

    @property
    def merged(self) -> bool:
        """True for a message that stands for several events (``first_seq`` < ``seq``)."""
        return self.first_seq < self.seq

    @property
    def time(self) -> Optional[datetime]:
        """``ts`` as an aware ``datetime`` (``None`` if the server sent none or an unparsable one)."""
        if not self.ts:
            return None
        try:
            return datetime.fromisoformat(self.ts.replace("Z", "+00:00"))
        except ValueError:
            return None


# ---- the workflow domain --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowCreated(Event):
    """``workflow_created``: ``data`` is the whole new workflow document (id, name, phase, metadata, …)."""

    kind: ClassVar[str] = "workflow_created"

    @property
    def workflow_id(self) -> Optional[str]:
        return _str(self.data, "id") or _str(self.data, "workflow_id")

    @property
    def name(self) -> Optional[str]:
        return _str(self.data, "name")

    @property
    def phase(self) -> Optional[str]:
        return _str(self.data, "phase")

    @property
    def metadata(self) -> Optional[Dict[str, Any]]:
        return _dict(self.data, "metadata")


@dataclass(frozen=True)
class RequirementsSubmitted(Event):
    """``requirements_submitted``: ``data`` = ``{"workflow_id", "requirements": {"text", "items", …}}``."""

    kind: ClassVar[str] = "requirements_submitted"

    @property
    def workflow_id(self) -> Optional[str]:
        return _str(self.data, "workflow_id")

    @property
    def requirements(self) -> Optional[Dict[str, Any]]:
        return _dict(self.data, "requirements")

    @property
    def text(self) -> Optional[str]:
        return _str(self.requirements, "text")

    @property
    def items(self) -> Optional[List[Any]]:
        return _list(self.requirements, "items")


@dataclass(frozen=True)
class PhaseChanged(Event):
    """``phase_changed``: ``data`` = ``{"workflow_id", "from", "to", "reason"}``.

    ``from`` is a Python keyword, hence :attr:`from_phase` / :attr:`to_phase`.
    """

    kind: ClassVar[str] = "phase_changed"

    @property
    def workflow_id(self) -> Optional[str]:
        return _str(self.data, "workflow_id")

    @property
    def from_phase(self) -> Optional[str]:
        return _str(self.data, "from")

    @property
    def to_phase(self) -> Optional[str]:
        return _str(self.data, "to")

    @property
    def reason(self) -> Optional[str]:
        return _str(self.data, "reason")


@dataclass(frozen=True)
class Progress(Event):
    """``progress``: ``data`` = ``{"workflow_id", "percent", "message"}``."""

    kind: ClassVar[str] = "progress"

    @property
    def workflow_id(self) -> Optional[str]:
        return _str(self.data, "workflow_id")

    @property
    def percent(self) -> Optional[float]:
        return _num(self.data, "percent")

    @property
    def message(self) -> Optional[str]:
        return _str(self.data, "message")


@dataclass(frozen=True)
class WorkflowDeleted(Event):
    """``workflow_deleted``: ``data`` = ``{"workflow_id", "streams": [...]}``."""

    kind: ClassVar[str] = "workflow_deleted"

    @property
    def workflow_id(self) -> Optional[str]:
        return _str(self.data, "workflow_id")


# ---- AI output streams (type "stream") -------------------------------------------------------------------


@dataclass(frozen=True)
class StreamEvent(Event):
    """A ``stream`` event whose shape this client does not recognise; the base of the three below.

    The server sends one ``stream`` type for a stream's whole life — opened, each delta, the end — and the
    shape of ``data`` tells them apart, which :func:`event_from_envelope` does for you.
    """

    kind: ClassVar[str] = "stream"

    @property
    def stream_id(self) -> Optional[str]:
        return _str(self.data, "stream_id")

    @property
    def workflow_id(self) -> Optional[str]:
        return _str(self.data, "workflow_id")


@dataclass(frozen=True)
class StreamStarted(StreamEvent):
    """A stream was opened: ``data`` = ``{"stream_id", "workflow_id", "started": true}``."""

    kind: ClassVar[str] = "stream_started"


@dataclass(frozen=True)
class StreamDelta(StreamEvent):
    """A piece of model output: ``data`` = ``{"stream_id", "workflow_id", "index", "delta"}``.

    ``index`` counts a stream's deltas 0, 1, 2 …; concatenating ``delta`` in index order gives the text.
    A merged delta (:attr:`merged`; seqs ``first_seq``..``seq``) stands for ``count`` consecutive deltas
    from ``index`` on, ``delta`` being their texts concatenated; the next delta then carries
    :attr:`next_index` (``index + count``).
    """

    kind: ClassVar[str] = "stream_delta"

    @property
    def index(self) -> Optional[int]:
        return _int(self.data, "index")

    @property
    def delta(self) -> str:
        return _str(self.data, "delta") or ""

    @property
    def count(self) -> int:
        """How many deltas this message stands for: ``data["count"]`` on a merged delta, else 1."""
        value = _int(self.data, "count")
        return value if value is not None and value >= 1 else 1

    @property
    def next_index(self) -> Optional[int]:
        """The index the stream's next delta carries (``index + count``); ``None`` without an index."""
        index = self.index
        return index + self.count if index is not None else None


@dataclass(frozen=True)
class StreamEnd(StreamEvent):
    """A stream ended: ``data`` = ``{"stream_id", "workflow_id", "status", "reason", "deltas", "length",
    "bytes", "done": true}``; ``status`` is ``completed`` or ``failed`` (``reason`` ``idle_timeout`` when
    the server ended a stream nobody appended to for too long)."""

    kind: ClassVar[str] = "stream_end"

    @property
    def status(self) -> Optional[str]:
        return _str(self.data, "status")

    @property
    def reason(self) -> Optional[str]:
        return _str(self.data, "reason")

    @property
    def deltas(self) -> Optional[int]:
        return _int(self.data, "deltas")

    @property
    def length(self) -> Optional[int]:
        return _int(self.data, "length")


# ---- snapshots --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot(Event):
    """The agent's whole current state, standing in for events that can no longer be replayed.

    The server sends one when a resume is impossible (the events you missed fell out of its history, or the
    history itself was lost and the epoch changed) and when asked with ``{"type": "snapshot"}``. ``seq`` is
    the last event the state includes: events after it follow as usual. ``data`` is
    ``{"seq", "epoch", "recovered", "state"}``; ``state`` is ``{"workflows": [...], "streams": [...]}``.
    """

    kind: ClassVar[str] = "snapshot"

    @property
    def epoch(self) -> str:
        return _str(self.data, "epoch") or ""

    @property
    def recovered(self) -> bool:
        return bool(_field(self.data, "recovered"))

    @property
    def state(self) -> Dict[str, Any]:
        return _dict(self.data, "state") or {}

    @property
    def workflows(self) -> List[Any]:
        return _list(self.state, "workflows") or []

    @property
    def streams(self) -> List[Any]:
        return _list(self.state, "streams") or []


_BY_TYPE: Dict[str, Type[Event]] = {
    "workflow_created": WorkflowCreated,
    "requirements_submitted": RequirementsSubmitted,
    "phase_changed": PhaseChanged,
    "progress": Progress,
    "workflow_deleted": WorkflowDeleted,
}

#: Envelope types that are about the connection, not the channel: they carry no ``seq`` and are never
#: yielded as events (the subscription handles them itself).
CONTROL_TYPES = frozenset({"connected", "heartbeat", "pong", "error"})


def _stream_class(data: Any) -> Type[Event]:
    if _field(data, "done"):
        return StreamEnd
    if isinstance(data, dict) and "delta" in data:
        return StreamDelta
    if _field(data, "started"):
        return StreamStarted
    return StreamEvent


def event_from_envelope(envelope: Mapping[str, Any]) -> Event:
    """Builds the typed event for a server envelope (a live or replayed event, a snapshot, or one entry
    of the history API's ``events``).

    Raises ``ValueError`` for control envelopes (``connected``, ``heartbeat``, ``pong``, ``error``) and for
    anything without a usable ``seq``: those are not channel events and must not move a subscriber's
    position.
    """
    etype = envelope.get("type")
    if not isinstance(etype, str) or not etype:
        raise ValueError(f"envelope without a type: {envelope!r}")
    if etype in CONTROL_TYPES:
        raise ValueError(f"{etype!r} is a control message, not an event")
    data = envelope.get("data")
    agent_id = envelope.get("agent_id")
    ts = envelope.get("ts")
    if etype == "snapshot":
        seq = _field(data, "seq")
        cls: Type[Event] = Snapshot
    else:
        seq = envelope.get("seq")
        cls = _stream_class(data) if etype == "stream" else _BY_TYPE.get(etype, Event)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError(f"{etype!r} envelope without a valid seq: {envelope!r}")
    # A merged message (seqs first_seq..seq); absent or unusable means the event stands for seq alone.
    first_seq = envelope.get("first_seq") if etype != "snapshot" else None
    if not isinstance(first_seq, int) or isinstance(first_seq, bool):
        first_seq = seq
    return cls(
        type=etype,
        agent_id=agent_id if isinstance(agent_id, str) else "",
        seq=seq,
        ts=ts if isinstance(ts, str) else "",
        data=data,
        first_seq=first_seq,
    )
