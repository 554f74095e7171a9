"""Subscribing: :class:`AgentwireClient` and the :class:`Subscription` it hands out.

A subscription is one agent's event stream that survives the network. It connects, yields each event
once and in order, and when the connection drops — a server restart, a proxy cutting idle sockets, a
laptop waking up, a server that froze and went silent — it reconnects by itself and resumes exactly
where it left off, or yields a :class:`~agentwire.events.Snapshot` when that is no longer possible. The
code consuming it sees one unbroken stream and, if it cares, the connection's state.

How (see the README for the protocol side):

- **Position.** The subscription remembers the seq of the last event it yielded and the epoch the
  server named in ``connected``. Each reconnect asks for ``?since=<seq>&epoch=<epoch>``; the server
  replays what was missed and goes live with no gap, or sends a snapshot when it cannot (the events fell
  out of its history, or the history was lost and the epoch changed).
- **No duplicates, no disorder.** An event whose seq is not above the position is dropped, whatever the
  reason it arrived (a replay overlapping a live event, a server bug). A snapshot moves the position to its
  own seq and epoch, so events it already includes are dropped too. A merged message (a subscriber that
  fell behind may get consecutive stream deltas or progress updates as one message standing for seqs
  ``first_seq``..``seq``) follows on when its ``first_seq`` is the next seq, and moves the position to
  its ``seq``.
- **Dead connections.** TCP may not notice that the other side froze or vanished for many minutes. The
  server sends a ``heartbeat`` envelope (and a ping) every ``heartbeat_interval``, whatever else it
  sends, so no frame at all for ``heartbeat_grace`` (2.5) intervals means the connection is dead: it is
  aborted and replaced.
- **Backoff.** Reconnects wait with exponential backoff and full jitter (:mod:`agentwire.backoff`), so a
  restarted server is not hit by all its clients at the same instant.

Pull-based on purpose: the subscription reads from the socket only while the consumer asks for the next
event. A consumer that falls far behind therefore pushes back on the server, which eventually drops the
connection as a slow consumer (close code 1008) — and the subscription then resumes from the last event
actually handed out, so nothing is lost, and the position always means "delivered", not "received".
"""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import logging
import re
import ssl
import time
from dataclasses import dataclass
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Union,
)

import websockets
import websockets.exceptions as ws_errors

_ws_connect: Any
_refusal_protocol: Any = None
try:  # websockets 10–13: the API this was written against; 14+ keeps it under legacy/.
    from websockets.legacy.client import WebSocketClientProtocol as _LegacyProtocol
    from websockets.legacy.client import connect as _legacy_connect

    _ws_connect = _legacy_connect

    class _RefusalReadingProtocol(_LegacyProtocol):  # type: ignore[misc,valid-type]
        """Keeps the JSON body of a refused upgrade (``{"error": {"code": "token_expired", …}}``), which
        the legacy client drops, so a refusal can say which one it was."""

        refusal_body = b""

        async def read_http_response(self) -> Any:
            status, headers = await super().read_http_response()
            if status != 101:
                length = headers.get("Content-Length", "")
                if length.isdigit() and 0 < int(length) <= MAX_REFUSAL_BODY:
                    try:
                        self.refusal_body = await asyncio.wait_for(self.reader.readexactly(int(length)), 5.0)
                    except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
                        pass
            return status, headers

        async def handshake(self, *args: Any, **kwargs: Any) -> None:
            try:
                await super().handshake(*args, **kwargs)
            except ws_errors.InvalidStatusCode as exc:
                exc.refusal_body = self.refusal_body  # type: ignore[attr-defined]
                raise

    _refusal_protocol = _RefusalReadingProtocol
except ImportError:  # pragma: no cover - only on very new releases that dropped legacy/
    _ws_connect = getattr(websockets, "connect")

from ._http import Endpoint, HttpResponse, decode_json, segment
from .backoff import Backoff
from .errors import AgentwireConnectionError, AgentwireError, AuthenticationError, error_for
from .events import CONTROL_TYPES, Event, Snapshot, event_from_envelope
from .publisher import AsyncPublisher

log = logging.getLogger("agentwire")

AGENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

#: A connection that has been up at least this long counts as a success: the next failure starts the
#: backoff from the beginning. A server that accepts and then drops every connection right away thus
#: still sees the delays grow instead of a reconnect loop.
STABLE_AFTER_SECONDS = 5.0

#: Used when ``connected`` names no usable heartbeat interval (0 or missing; very old servers rounded
#: sub-second intervals down to 0). Longer than any such interval, so it never declares a live
#: connection dead.
FALLBACK_HEARTBEAT_INTERVAL = 1.0

#: The largest refusal body read from a refused upgrade (the server's are a few hundred bytes).
MAX_REFUSAL_BODY = 64 * 1024

#: With a ``token_provider``, how many upgrades in a row may be refused with 401 (each time after asking
#: the provider again) before the subscription gives up with :class:`AuthenticationError`. A provider
#: that keeps handing out expired or foreign-signed tokens must not make the client retry for ever.
MAX_AUTH_ATTEMPTS = 3

#: How many state changes :attr:`Subscription.state_history` keeps (a process that runs for months
#: through many reconnects must not grow without bound).
STATE_HISTORY_LENGTH = 256


class ConnectionState(str, enum.Enum):
    """Where a subscription's connection is.

    ``CONNECTING``: the first attempt. ``LIVE``: connected and caught up; events arrive as they happen.
    ``RECONNECTING``: the connection was lost (or an attempt failed) and the next attempt waits for its
    backoff. ``RESUMED``: reconnected and the server is replaying what was missed without loss (``LIVE``
    follows once the replay has been read). ``CLOSED``: for good — closed by the caller, or a permanent
    error (the iteration then raises it).
    """

    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    RESUMED = "resumed"
    CLOSED = "closed"

    @property
    def connected(self) -> bool:
        """True for ``LIVE`` and ``RESUMED``: a connection is open and events flow."""
        return self in (ConnectionState.LIVE, ConnectionState.RESUMED)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class StateChange:
    """One step of a subscription's life, for logs, UIs ("reconnecting in 3 s…") and tests.

    A change is reported for every failed attempt too (``state`` RECONNECTING again, with the next
    ``attempt`` and ``delay``), so a caller can show the retries, not only the first.
    """

    state: ConnectionState
    previous: Optional[ConnectionState]
    reason: str
    #: Consecutive failures so far, counting toward the backoff: 1 at the first RECONNECTING (reset once a
    #: connection stayed up ``STABLE_AFTER_SECONDS``).
    attempt: int = 0
    #: For RECONNECTING: seconds until the next attempt.
    delay: Optional[float] = None
    #: ``time.monotonic()`` when it happened.
    at: float = 0.0


class Position(NamedTuple):
    """Where a subscription is: the seq of the last event it delivered, in which epoch.

    A tuple, so ``seq, epoch = sub.position`` works. Persist it to resume across process restarts:
    ``client.subscribe(agent_id, since=seq, epoch=epoch)``.
    """

    seq: int
    epoch: str


StateCallback = Callable[[StateChange], Union[None, Awaitable[None]]]

#: Hands out a subscriber token (a JWT allowing the agent): a function, or a coroutine function. Called
#: before every connection attempt and on every ``token_expiring``, so it can fetch a fresh token from
#: the application's backend each time.
TokenProvider = Callable[[], Union[str, Awaitable[str]]]

#: Session messages of the token's life, consumed by the subscription (not events).
_TOKEN_MESSAGES = frozenset({"token_expiring", "token_refreshed"})


def _check_credentials(token: Optional[str], token_provider: Optional[TokenProvider]) -> None:
    if token is not None and token_provider is not None:
        raise ValueError("give token or token_provider, not both")
    if token is not None:
        _check_token(token)
    if token_provider is not None and not callable(token_provider):
        raise ValueError("token_provider must be a function or a coroutine function returning the token")


def _check_token(token: object) -> str:
    # A JWT is base64url parts joined by dots; anything else cannot travel as a subprotocol.
    if not isinstance(token, str) or not re.fullmatch(r"[A-Za-z0-9_.~+/=-]+", token):
        raise ValueError("a token must be a non-empty string of base64url characters and dots (a JWT)")
    return token


class SequenceTracker:
    """The ordering rules of a subscription, without any I/O (so they can be tested on their own).

    It owns the position and answers, for each envelope, whether it is delivered; the subscription only
    moves bytes.
    """

    def __init__(self, position: Optional[Position] = None) -> None:
        self.position: Optional[Position] = position
        self.dropped = 0
        self.gaps = 0

    def resume_query(self) -> Dict[str, Any]:
        """The query string for the next connection: resume from the position, if there is one."""
        if self.position is None:
            return {}
        query: Dict[str, Any] = {"since": self.position.seq}
        if self.position.epoch:
            query["epoch"] = self.position.epoch
        return query

    def on_connected(self, data: Mapping[str, Any]) -> None:
        """A fresh subscription starts at the channel's current seq: "from now on"."""
        if self.position is None:
            seq = data.get("seq")
            epoch = data.get("epoch")
            if isinstance(seq, int) and isinstance(epoch, str):
                self.position = Position(seq, epoch)

    def accept(self, event: Event) -> bool:
        """True if ``event`` is to be delivered (and the position moves to it); False for a duplicate.

        A merged message (seqs ``first_seq``..``seq``) follows on when its ``first_seq`` is the next seq;
        it counts as a duplicate only when its ``seq`` was already delivered.
        """
        if isinstance(event, Snapshot):
            return self.apply_snapshot(event)
        if self.position is not None and event.seq <= self.position.seq:
            self.dropped += 1
            return False
        if self.position is not None and event.first_seq > self.position.seq + 1:
            # The server promises no gaps; deliver anyway (holding back would stall for ever) but say so.
            # (A merged message overlapping the position, first_seq <= position < seq, is not a gap.)
            self.gaps += 1
            log.warning("agentwire: seq gap on %s: %d after %d", event.agent_id, event.first_seq, self.position.seq)
        epoch = self.position.epoch if self.position is not None else ""
        self.position = Position(event.seq, epoch)
        return True

    def apply_snapshot(self, snap: Snapshot) -> bool:
        """A snapshot is always delivered; it replaces the position (within one epoch it never moves it
        back, so events already delivered are not delivered again)."""
        if self.position is not None and self.position.epoch == snap.epoch:
            self.position = Position(max(self.position.seq, snap.seq), snap.epoch)
        else:
            self.position = Position(snap.seq, snap.epoch)
        return True


class _Disconnected(Exception):
    """Internal: the current connection is over; ``reason`` says why, for the state change."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _describe_close(exc: ws_errors.ConnectionClosed) -> str:
    rcvd = exc.rcvd
    if rcvd is None:
        return "connection lost (no close frame)"
    meaning = {1001: "going away", 1007: "invalid data", 1008: "policy (slow consumer)", 1009: "message too big",
               1012: "service restart (history gap)", 4001: "token expired"}
    text = f"closed by server: {rcvd.code}"
    if rcvd.code in meaning:
        text += f" {meaning[rcvd.code]}"
    if rcvd.reason:
        text += f" ({rcvd.reason})"
    return text


class Subscription:
    """One agent's events, across reconnects. Get one from :meth:`AgentwireClient.subscribe`.

    Iterate it once (``async for event in sub``); use it as an async context manager to have it closed
    when the block ends, or call :meth:`close`. Reading the state: :attr:`state`, the ``on_state``
    callback, or ``async for change in sub.states()``.
    """

    def __init__(
        self,
        client: "AgentwireClient",
        agent_id: str,
        *,
        since: Optional[int] = None,
        epoch: Optional[str] = None,
        on_state: Optional[StateCallback] = None,
        max_attempts: Optional[int] = None,
        token: Optional[str] = None,
        token_provider: Optional[TokenProvider] = None,
    ) -> None:
        _check_credentials(token, token_provider)
        if not isinstance(agent_id, str) or not AGENT_ID_RE.match(agent_id):
            raise ValueError(f"agent_id must be 1-128 characters of [A-Za-z0-9_.:-], not {agent_id!r}")
        if since is None and epoch is not None:
            raise ValueError("epoch is only meaningful together with since")
        if since is not None and since < 0:
            raise ValueError("since must be >= 0")
        self.client = client
        self.agent_id = agent_id
        self.max_attempts = max_attempts
        self._tracker = SequenceTracker(Position(since, epoch or "") if since is not None else None)
        self._on_state = on_state
        if token is None and token_provider is None:
            token, token_provider = client.token, client.token_provider
        if token is None and token_provider is None and client.api_key is not None:
            token = client.api_key  # a key with the read scope may subscribe too (a backend following agents)
        self._token = token
        self._token_provider = token_provider
        self._auth_failures = 0
        self._refresh_task: "Optional[asyncio.Future[Any]]" = None
        self._state = ConnectionState.CONNECTING
        self._history: "collections.deque[StateChange]" = collections.deque(maxlen=STATE_HISTORY_LENGTH)
        self._listeners: "List[asyncio.Queue[StateChange]]" = []
        self._ws: Optional[Any] = None
        self._closing = False
        self._close_event: Optional[asyncio.Event] = None
        self._gen: Optional[AsyncIterator[Event]] = None
        self._finished: Optional[asyncio.Event] = None
        self._connected_at: Optional[float] = None
        self._attempt = 0
        self._callback_tasks: "set[asyncio.Future[Any]]" = set()
        self.connected_info: Dict[str, Any] = {}
        """The ``data`` of the latest ``connected`` envelope (session_id, epoch, heartbeat_interval, …)."""
        self.heartbeat_timeout: Optional[float] = None
        """Seconds without any frame after which the current connection is declared dead."""
        self.connections = 0
        """How many connections reached ``connected`` so far."""
        self.last_server_error: Optional[Dict[str, Any]] = None
        """The ``data`` of the last ``error`` envelope (a complaint about something this client sent)."""
        self.token_refreshes = 0
        """How many ``refresh`` messages the server accepted (``token_refreshed``) on this subscription."""
        self.token_exp: Optional[int] = None
        """When the current connection's token expires (seconds since the epoch), once the server said so."""

    # ---- what callers read ----

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def position(self) -> Optional[Position]:
        """(seq, epoch) of the last event delivered; ``None`` before the first ``connected`` of a fresh
        subscription."""
        return self._tracker.position

    @property
    def dropped_duplicates(self) -> int:
        """Events dropped because their seq had already been delivered."""
        return self._tracker.dropped

    @property
    def state_history(self) -> List[StateChange]:
        """The state changes so far (the last ``STATE_HISTORY_LENGTH``), oldest first."""
        return list(self._history)

    def states(self) -> AsyncIterator[StateChange]:
        """An async iterator of the state changes from now on; it ends after ``CLOSED``.

        Each call gets its own iterator, and no change is skipped however slowly it is read.
        """
        queue: "asyncio.Queue[StateChange]" = asyncio.Queue()
        if self._state is ConnectionState.CLOSED and self._history:
            queue.put_nowait(self._history[-1])
        else:
            self._listeners.append(queue)

        async def gen() -> AsyncIterator[StateChange]:
            try:
                while True:
                    change: StateChange = await queue.get()
                    yield change
                    if change.state is ConnectionState.CLOSED:
                        return
            finally:
                if queue in self._listeners:
                    self._listeners.remove(queue)

        return gen()

    # ---- control ----

    async def request_snapshot(self) -> bool:
        """Asks the server for the current state; the answer is yielded as a :class:`Snapshot`.

        Returns False (and asks nothing) when no connection is open right now.
        """
        ws = self._ws
        if ws is None or not self._state.connected:
            return False
        try:
            await ws.send('{"type":"snapshot"}')
            return True
        except ws_errors.ConnectionClosed:
            return False

    async def close(self) -> None:
        """Ends the subscription: the connection is closed (with a close handshake when the server still
        answers), iteration stops, and the state becomes CLOSED. Safe to call more than once, from any task."""
        self._closing = True
        if self._close_event is not None:
            self._close_event.set()
        gen = self._gen
        if gen is not None and self._finished is not None and not self._finished.is_set():
            if getattr(gen, "ag_running", False):
                # Another task is inside the iterator: it wakes up on the close event and winds down.
                try:
                    await asyncio.wait_for(self._finished.wait(), timeout=self.client.close_timeout + 1.0)
                except asyncio.TimeoutError:
                    pass
            else:
                await gen.aclose()  # type: ignore[attr-defined]
        if self._state is not ConnectionState.CLOSED:
            self._set_state(ConnectionState.CLOSED, "closed by the caller")

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._gen is not None:
            raise RuntimeError("a Subscription can be iterated only once")
        self._gen = self._run()
        return self._gen

    # ---- the machinery ----

    def _set_state(self, state: ConnectionState, reason: str, delay: Optional[float] = None) -> None:
        change = StateChange(state, self._state if self._history else None, reason, self._attempt, delay,
                             time.monotonic())
        self._state = state
        self._history.append(change)
        log.info("agentwire: %s %s (%s)", self.agent_id, state.value, reason)
        for queue in list(self._listeners):
            queue.put_nowait(change)
        if self._on_state is not None:
            try:
                result = self._on_state(change)
                if asyncio.iscoroutine(result):
                    task = asyncio.ensure_future(result)
                    self._callback_tasks.add(task)  # keep a reference until it is done
                    task.add_done_callback(self._callback_tasks.discard)
            except Exception:  # a broken callback must not break the stream
                log.exception("agentwire: on_state callback failed")

    @staticmethod
    def _abort(ws: Any) -> None:
        transport = getattr(ws, "transport", None)
        if transport is not None:
            transport.abort()

    async def _sleep(self, seconds: float) -> None:
        """Sleeps, but wakes at once when the subscription is closed."""
        assert self._close_event is not None
        try:
            await asyncio.wait_for(self._close_event.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def _until_closed_or(self, fut: "asyncio.Future[Any]", timeout: Optional[float]) -> bool:
        """Waits for ``fut`` (without cancelling it), the close event, or the timeout; True if ``fut`` is done."""
        assert self._close_event is not None
        closer = asyncio.ensure_future(self._close_event.wait())
        try:
            await asyncio.wait({fut, closer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closer.cancel()
        return fut.done()

    async def _run(self) -> AsyncIterator[Event]:
        self._close_event = asyncio.Event()
        self._finished = asyncio.Event()
        if self._closing:  # closed before the first iteration
            self._close_event.set()
            self._finished.set()
            return
        self._set_state(ConnectionState.CONNECTING, "starting")
        error: Optional[BaseException] = None
        try:
            while not self._closing:
                conn = self._connection()
                try:
                    async for event in conn:
                        yield event
                    reason = "connection ended"
                except _Disconnected as gone:
                    reason = gone.reason
                finally:
                    await conn.aclose()  # type: ignore[attr-defined]
                if self._closing:
                    break
                # Back off; a connection that stayed up long enough starts the count afresh.
                if self._connected_at is not None and time.monotonic() - self._connected_at >= STABLE_AFTER_SECONDS:
                    self._attempt = 0
                self._attempt += 1
                if self.max_attempts is not None and self._attempt >= self.max_attempts:
                    raise AgentwireConnectionError(
                        f"gave up on {self.agent_id} after {self._attempt} failed attempts: {reason}")
                delay = self.client.backoff.delay(self._attempt - 1)
                self._set_state(ConnectionState.RECONNECTING, reason, delay)
                await self._sleep(delay)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if self._state is not ConnectionState.CLOSED:
                if error is None or isinstance(error, (GeneratorExit, asyncio.CancelledError)):
                    why = "closed by the caller"
                else:
                    why = f"stopped: {error}"
                self._set_state(ConnectionState.CLOSED, why)
            self._finished.set()

    async def _fetch_token(self) -> Optional[str]:
        """The token for the next connection or refresh: the provider's answer (awaited when it is a
        coroutine), else the fixed token, else None (anonymous)."""
        if self._token_provider is None:
            return self._token
        try:
            result = self._token_provider()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _Disconnected(f"the token provider failed: {exc!r}") from exc
        try:
            return _check_token(result)
        except ValueError as exc:
            raise _Disconnected(f"the token provider returned no usable token: {exc}") from exc

    def _refusal(self, exc: Exception, status: int) -> AgentwireError:
        """The typed error of a refused upgrade, with the server's code when its JSON body was read."""
        body = getattr(exc, "refusal_body", b"") or b""
        response = getattr(exc, "response", None)  # websockets 14+: InvalidStatus carries the response
        if not body and response is not None:
            body = getattr(response, "body", b"") or b""
        try:
            decode_json(HttpResponse(status, {}, bytes(body)))
        except AgentwireError as err:
            if err.code != f"http_{status}":
                return err
        return error_for(status, "handshake_refused",
                         f"the server refused to subscribe to {self.agent_id} (HTTP {status})")

    async def _open(self, url: str, token: Optional[str]) -> Optional[Any]:
        """The WebSocket handshake; None when the subscription was closed meanwhile."""
        client = self.client
        options: Dict[str, Any] = {"ssl": client.ssl_context} if client.ssl_context is not None else {}
        if token is not None:
            # Where browsers must put it: the subprotocol list "bearer, <token>"; the server selects "bearer".
            options["subprotocols"] = ["bearer", token]
        if _refusal_protocol is not None:
            options["create_protocol"] = _refusal_protocol
        connecting = asyncio.ensure_future(_ws_connect(
            url,
            open_timeout=client.open_timeout,
            ping_interval=None,  # the server pings us and sends heartbeats; see heartbeat_timeout
            close_timeout=client.close_timeout,
            max_size=client.max_message_bytes,
            compression=client.compression,
            extra_headers=client.headers or None,
            user_agent_header="agentwire-python/0.1.0",
            **options,
        ))
        try:
            if not await self._until_closed_or(connecting, None):
                connecting.cancel()
                return None
            return connecting.result()
        except ws_errors.InvalidStatusCode as exc:
            status = exc.status_code
            if 400 <= status < 500 and status not in (408, 429):
                err = self._refusal(exc, status)
                if status == 401 and self._token_provider is not None and self._auth_failures + 1 < MAX_AUTH_ATTEMPTS:
                    # An expired or rotated-out token: the provider may have a fresh one by the next attempt.
                    self._auth_failures += 1
                    raise _Disconnected(f"handshake refused: {err}") from exc
                raise err from exc
            raise _Disconnected(f"handshake answered HTTP {status}") from exc
        except asyncio.TimeoutError as exc:
            raise _Disconnected(f"no handshake answer within {client.open_timeout:g}s") from exc
        except (OSError, ws_errors.WebSocketException) as exc:
            raise _Disconnected(f"connect failed: {exc or type(exc).__name__}") from exc
        finally:
            if not connecting.done():
                connecting.cancel()

    async def _connection(self) -> AsyncIterator[Event]:
        """One connection: connect, read ``connected``, yield its events; raises _Disconnected when it is
        lost, returns when the subscription is closed.

        Raises :class:`AgentwireError` for refusals that no retry can fix (a 4xx to the upgrade).
        """
        self._connected_at = None
        url = self.client.endpoint.ws_url(f"/ws/agents/{segment(self.agent_id)}", self._tracker.resume_query())
        token = await self._fetch_token()  # asked again on every attempt
        if self._closing:
            return
        ws = await self._open(url, token)
        if ws is None:
            return
        self.token_exp = None
        self._ws = ws
        timeout: float = self.client.open_timeout  # until `connected` names the heartbeat interval
        replay_left = 0
        pending: "Optional[asyncio.Future[Union[str, bytes]]]" = None
        polite = False
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(ws.recv())
                # The read is never cancelled while the connection lives, so no frame can be lost
                # between a timeout and a completed read.
                waited_from = time.monotonic()
                done = await self._until_closed_or(pending, timeout)
                if not done and not self._closing and time.monotonic() - waited_from > timeout * 1.2:
                    # The event loop itself was stalled past the deadline (a blocking call somewhere): a frame
                    # may be sitting unread. One short second look before calling the connection dead.
                    done = await self._until_closed_or(pending, timeout * 0.2)
                if not done:
                    if self._closing:
                        polite = True
                        return
                    raise _Disconnected(f"no frame for {timeout:g}s (heartbeat timeout)")
                fut, pending = pending, None
                try:
                    raw = fut.result()
                except ws_errors.ConnectionClosed as exc:
                    if self._closing:
                        return
                    raise _Disconnected(_describe_close(exc)) from exc
                if self._closing:
                    polite = True
                    return
                envelope = self._decode(raw)
                if envelope is None:
                    continue
                etype = envelope.get("type")

                if etype == "connected":
                    raw_data = envelope.get("data")
                    data: Dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
                    self.connected_info = data
                    self.connections += 1
                    self._auth_failures = 0
                    self._connected_at = time.monotonic()
                    timeout = self._heartbeat_timeout(data)
                    self.heartbeat_timeout = timeout
                    self._tracker.on_connected(data)
                    if data.get("resumed") and data.get("recovered"):
                        replay_left = int(data.get("replayed") or 0)
                        self._set_state(ConnectionState.RESUMED, f"resumed, {replay_left} to replay")
                        if replay_left == 0:
                            self._set_state(ConnectionState.LIVE, "caught up")
                    elif not data.get("resumed"):
                        self._set_state(ConnectionState.LIVE, "connected")
                    # Resumed but not recovered: a snapshot follows, and LIVE with it.
                    continue
                if etype in ("heartbeat", "pong"):
                    continue
                if etype in _TOKEN_MESSAGES:
                    self._on_token_message(ws, etype, envelope.get("data"))
                    continue
                if etype == "error":
                    err = envelope.get("data")
                    self.last_server_error = err if isinstance(err, dict) else {"data": err}
                    log.warning("agentwire: server error envelope on %s: %s", self.agent_id, err)
                    continue
                if etype in CONTROL_TYPES:
                    continue
                try:
                    event = event_from_envelope(envelope)
                except ValueError as exc:
                    log.warning("agentwire: ignoring a frame on %s: %s", self.agent_id, exc)
                    continue
                if isinstance(event, Snapshot):
                    self._tracker.apply_snapshot(event)
                    if not self._state.connected:
                        self._set_state(ConnectionState.LIVE, "snapshot (the missed events could not be replayed)")
                    yield event
                    continue
                if replay_left > 0:
                    # `replayed` counts events; a merged message stands for several.
                    replay_left -= min(replay_left, event.seq - event.first_seq + 1)
                    if replay_left == 0 and self._state is ConnectionState.RESUMED:
                        self._set_state(ConnectionState.LIVE, "caught up")
                elif not self._state.connected:
                    # Resumed, not recovered, and no snapshot came first (the server always sends one; be
                    # safe all the same): events flow, so the connection is live.
                    self._set_state(ConnectionState.LIVE, "events flowing")
                if self._tracker.accept(event):
                    yield event
        except GeneratorExit:
            polite = True  # the consumer stopped iterating
            raise
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
            if self._refresh_task is not None:
                self._refresh_task.cancel()
                self._refresh_task = None
            if self._ws is ws:
                self._ws = None
            if polite or self._closing:
                # A close handshake, so the server logs a clean goodbye; bounded by close_timeout.
                try:
                    await asyncio.wait_for(ws.close(), timeout=self.client.close_timeout + 0.5)
                except (asyncio.TimeoutError, OSError, ws_errors.WebSocketException):
                    self._abort(ws)
            else:
                # Dead or broken: no point waiting for a goodbye.
                self._abort(ws)
                try:
                    await asyncio.wait_for(ws.wait_closed(), timeout=1.0)
                except (asyncio.TimeoutError, OSError, ws_errors.WebSocketException):
                    pass

    def _on_token_message(self, ws: Any, etype: str, data: Any) -> None:
        data = data if isinstance(data, dict) else {}
        exp = data.get("exp")
        if isinstance(exp, int) and not isinstance(exp, bool):
            self.token_exp = exp
        if etype == "token_refreshed":
            self.token_refreshes += 1
            log.info("agentwire: %s token refreshed until %s", self.agent_id, exp)
            return
        if self._token_provider is None:
            # A fixed token cannot be renewed: the server closes with 4001 at exp, and the reconnect is
            # refused with token_expired (raised as AuthenticationError).
            log.warning("agentwire: the token of %s expires in %ss and there is no token_provider to renew it",
                        self.agent_id, data.get("expires_in"))
            return
        if self._refresh_task is None or self._refresh_task.done():
            # Off the read loop, so a slow provider does not hold up events or heartbeats.
            self._refresh_task = asyncio.ensure_future(self._refresh(ws))

    async def _refresh(self, ws: Any) -> None:
        """Asks the provider for a new token and sends it as ``refresh``; a failure is logged (the server
        then closes with 4001 at exp, and the reconnect asks the provider again)."""
        try:
            token = await self._fetch_token()
            await ws.send(json.dumps({"type": "refresh", "token": token}))
        except _Disconnected as exc:
            log.warning("agentwire: cannot refresh the token of %s: %s", self.agent_id, exc.reason)
        except ws_errors.ConnectionClosed:
            pass

    def _heartbeat_timeout(self, data: Mapping[str, Any]) -> float:
        client = self.client
        if client.heartbeat_timeout is not None:
            return client.heartbeat_timeout
        interval = data.get("heartbeat_interval")
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
            interval = FALLBACK_HEARTBEAT_INTERVAL
        return client.heartbeat_grace * float(interval)

    def _decode(self, raw: Union[str, bytes]) -> Optional[Dict[str, Any]]:
        if isinstance(raw, bytes):
            log.warning("agentwire: ignoring a binary frame on %s", self.agent_id)
            return None
        try:
            envelope = json.loads(raw)
        except ValueError:
            log.warning("agentwire: ignoring a frame that is not JSON on %s", self.agent_id)
            return None
        if not isinstance(envelope, dict):
            log.warning("agentwire: ignoring a frame that is not an object on %s", self.agent_id)
            return None
        return envelope


class AgentwireClient:
    """The entry point: subscriptions over WebSocket, publishing over HTTP, one base URL for both.

    ``base_url`` is the server's HTTP address, e.g. ``http://127.0.0.1:8080`` (``https://`` for TLS; a path
    prefix is kept for servers behind a reverse proxy). The client itself holds no connection: each
    :meth:`subscribe` opens its own, so many agents can be followed at once.
    """

    def __init__(
        self,
        base_url: str,
        *,
        backoff: Backoff = Backoff(),
        heartbeat_grace: float = 2.5,
        heartbeat_timeout: Optional[float] = None,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        max_message_bytes: Optional[int] = 64 * 1024 * 1024,
        compression: Optional[str] = "deflate",
        headers: Optional[Mapping[str, str]] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        http_timeout: float = 10.0,
        token: Optional[str] = None,
        token_provider: Optional[TokenProvider] = None,
        api_key: Optional[str] = None,
    ) -> None:
        """
        ``backoff``: reconnect delays (full jitter between 0 and ``min(max, base * 2**attempt)``).
        ``heartbeat_grace``: how many heartbeat intervals without any frame mean the connection is dead;
        2.5 tolerates one late heartbeat without waiting long. ``heartbeat_timeout`` overrides the
        computed value in seconds. ``open_timeout``: for the TCP + WebSocket handshake and for
        ``connected`` to arrive. ``max_message_bytes``: the largest event accepted (publishers may post up
        to the server's body limit, 1 MiB by default). ``compression``: ``"deflate"`` offers
        permessage-deflate (used only if the server runs with ``--compression``), ``None`` does not.
        ``headers``: sent with every handshake and HTTP request.

        Credentials, for a server with keys (without any, the server asks for none): ``token``, a
        subscriber JWT that allows the agents subscribed to, or ``token_provider``, a function or coroutine
        function returning one — called before every connection attempt and on every ``token_expiring``
        (the new token goes back as ``refresh``, keeping the connection). The token travels as the
        ``bearer`` subprotocol. A 403 (``agent_forbidden``) ends the subscription with
        :class:`~agentwire.errors.PermissionDeniedError`; a 401 (``token_expired``, ``token_invalid``) with
        :class:`~agentwire.errors.AuthenticationError` — at once with a fixed token, after
        ``MAX_AUTH_ATTEMPTS`` refusals in a row with a provider. ``api_key``: ``Authorization: Bearer`` on
        the HTTP calls of :attr:`publisher` (without one, a fixed ``token`` is sent there), and the
        subscriptions' credential when there is neither token nor provider (a key with the ``read`` scope
        may subscribe).
        """
        if heartbeat_grace <= 1.0:
            raise ValueError("heartbeat_grace must be above 1: a heartbeat arriving on time must not count as missed")
        _check_credentials(token, token_provider)
        self.token = token
        self.token_provider = token_provider
        if api_key is not None:
            _check_token(api_key)  # it may travel as a subprotocol too
        self.api_key = api_key
        self.base_url = base_url
        self.endpoint = Endpoint.parse(base_url)
        self.backoff = backoff
        self.heartbeat_grace = heartbeat_grace
        self.heartbeat_timeout = heartbeat_timeout
        self.open_timeout = open_timeout
        self.close_timeout = close_timeout
        self.max_message_bytes = max_message_bytes
        self.compression = compression
        self.headers: Dict[str, str] = dict(headers or {})
        self.ssl_context = ssl_context
        self.http_timeout = http_timeout
        self._publisher: Optional[AsyncPublisher] = None

    def subscribe(
        self,
        agent_id: str,
        *,
        since: Optional[int] = None,
        epoch: Optional[str] = None,
        on_state: Optional[StateCallback] = None,
        max_attempts: Optional[int] = None,
        token: Optional[str] = None,
        token_provider: Optional[TokenProvider] = None,
    ) -> Subscription:
        """Follows ``agent_id``'s events. Nothing connects until the subscription is iterated.

        Without ``since`` the stream starts with the next event published. With ``since`` (and the
        ``epoch`` it belongs to, e.g. a :class:`Position` saved earlier) it starts right after that seq:
        the server replays what came since, or yields a :class:`Snapshot` when it no longer can; ``since=0``
        without an epoch asks for everything the server still has. ``on_state`` is called (synchronously;
        a coroutine it returns is scheduled) with each :class:`StateChange`. ``max_attempts``: consecutive
        failed attempts after which iteration raises :class:`AgentwireConnectionError` (default: never).
        ``token`` / ``token_provider``: this subscription's credentials instead of the client's.
        """
        return Subscription(self, agent_id, since=since, epoch=epoch, on_state=on_state, max_attempts=max_attempts,
                            token=token, token_provider=token_provider)

    @property
    def publisher(self) -> AsyncPublisher:
        """An :class:`AsyncPublisher` for the same server (created on first use)."""
        if self._publisher is None:
            # The API key, else a fixed token (a JWT may carry the scopes the HTTP routes need).
            self._publisher = AsyncPublisher(self.base_url, timeout=self.http_timeout, headers=self.headers,
                                             ssl_context=self.ssl_context, api_key=self.api_key or self.token)
        return self._publisher

    async def stream_text(self, stream_id: str) -> Optional[str]:
        """A stream's text, also once it has ended (snapshots carry only open streams' text, so a UI
        fetches a finished output here when it shows it). See :meth:`Publisher.stream_text`."""
        return await self.publisher.stream_text(stream_id)

    async def workflow_streams(self, workflow_id: str) -> List[Dict[str, Any]]:
        """A workflow's stream summaries in start order. See :meth:`Publisher.workflow_streams`."""
        return await self.publisher.workflow_streams(workflow_id)

    async def agents(self, limit: Optional[int] = None, after: Optional[str] = None) -> Dict[str, Any]:
        """One page of the agents that have workflows. See :meth:`Publisher.agents`."""
        return await self.publisher.agents(limit=limit, after=after)
