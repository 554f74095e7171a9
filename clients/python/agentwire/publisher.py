"""Publishing and reading over the HTTP API: :class:`Publisher` (blocking) and :class:`AsyncPublisher`.

Both have the same methods with the same arguments and results; pick by the code you are in. A backend
that already runs an event loop should use :class:`AsyncPublisher` so a slow server never blocks the loop;
a script or a thread-per-request service uses :class:`Publisher`.

Errors: every refusal raises :class:`~agentwire.errors.AgentwireError` with the server's ``status``,
``code`` and ``message``; no answer at all raises its subclass
:class:`~agentwire.errors.AgentwireConnectionError`.

Retries: off by default (``retries=0``), because whether to retry is the caller's decision. With
``retries=N`` a request that failed in a way that may pass later (connection refused or reset, timeout,
503 other than ``store_full``) is tried again up to N times, with exponential backoff and full jitter.
Retrying a POST is only safe when the server can recognise the repeat, so a POST without an
``idempotency_key`` gets a random one when retries are on: a publish whose answer was lost (the server
stored it and then died, say) is then answered with its original seq instead of being stored twice.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, List, Mapping, Optional, TypeVar

from . import _http
from ._http import Endpoint, segment
from .backoff import Backoff
from .errors import AgentwireConnectionError, AgentwireError
from .events import Event, event_from_envelope

_NO_BODY = object()
T = TypeVar("T")


@dataclass(frozen=True)
class HistoryPage:
    """One page of ``GET /api/agents/{agent_id}/events``.

    ``events`` are typed like the ones a subscription yields. ``complete`` is false when events after
    ``since`` have already been pruned from the server's history (``oldest`` says where it starts now);
    page on with ``since=next_since`` until ``next_since == latest``.
    """

    agent_id: str
    epoch: str
    latest: int
    oldest: int
    complete: bool
    next_since: int
    events: List[Event] = field(default_factory=list)

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> "HistoryPage":
        return cls(
            agent_id=str(payload.get("agent_id", "")),
            epoch=str(payload.get("epoch", "")),
            latest=int(payload.get("latest", 0)),
            oldest=int(payload.get("oldest", 0)),
            complete=bool(payload.get("complete", False)),
            next_since=int(payload.get("next_since", 0)),
            events=[event_from_envelope(e) for e in payload.get("events", [])],
        )


@dataclass(frozen=True)
class _Request(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    query: Optional[Dict[str, Any]] = None
    body: Any = _NO_BODY
    idempotency_key: Optional[str] = None


def _as_dict(payload: Any) -> Dict[str, Any]:
    if not isinstance(payload, dict):
        raise AgentwireConnectionError(f"expected a JSON object from the server, got {payload!r}")
    return payload


def _dict_request(method: str, path: str, *, query: Optional[Dict[str, Any]] = None, body: Any = _NO_BODY,
                  idempotency_key: Optional[str] = None) -> "_Request[Dict[str, Any]]":
    return _Request(method, path, _as_dict, query, body, idempotency_key)


def _seq_of(payload: Any) -> int:
    seq = payload.get("seq") if isinstance(payload, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise AgentwireConnectionError(f"publish answered without a seq: {payload!r}")
    return seq


def _text_of(payload: Any) -> Optional[str]:
    text = _as_dict(payload).get("text")
    if text is not None and not isinstance(text, str):
        raise AgentwireConnectionError(f"expected the stream's text from the server, got {payload!r}")
    return text


def _streams_of(payload: Any) -> List[Dict[str, Any]]:
    streams = _as_dict(payload).get("streams")
    if not isinstance(streams, list):
        raise AgentwireConnectionError(f"expected a list of streams from the server, got {payload!r}")
    return streams


def _optional(**fields: Any) -> Dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class _Base:
    """Builds the requests; the two subclasses only differ in how they send them."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        retries: int = 0,
        backoff: Backoff = Backoff(base=0.2, max=5.0),
        headers: Optional[Mapping[str, str]] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        api_key: Optional[str] = None,
    ) -> None:
        """``base_url`` is the server's HTTP address (``http://127.0.0.1:8080``, or with a path prefix when
        behind a proxy). ``headers`` are sent with every request. ``api_key``: sent as ``Authorization:
        Bearer <api_key>`` on every request, for a server with keys — an API key with the scopes the calls
        need (``publish``, ``workflows``, ``read``, ``admin``), or a JWT carrying them. A 401 raises
        :class:`~agentwire.errors.AuthenticationError`, a 403 :class:`~agentwire.errors.PermissionDeniedError`;
        neither is retried."""
        self.endpoint = Endpoint.parse(base_url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.headers: Dict[str, str] = dict(headers or {})
        if api_key is not None:
            if not isinstance(api_key, str) or not api_key or any(c in api_key for c in "\r\n"):
                raise ValueError("api_key must be a non-empty string on one line")
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.ssl_context = ssl_context

    # ---- request plumbing ----

    def _prepare(self, req: "_Request[Any]") -> "tuple[str, Optional[bytes], Dict[str, str]]":
        path = self.endpoint.path(req.path, req.query)
        body = None if req.body is _NO_BODY else _http.encode_body(req.body)
        headers = dict(self.headers)
        key = req.idempotency_key
        if key is None and self.retries > 0 and req.method in ("POST", "DELETE"):
            key = uuid.uuid4().hex
        if key is not None:
            headers["Idempotency-Key"] = key
        return path, body, headers

    def _may_retry(self, err: AgentwireError, attempt: int) -> bool:
        return attempt < self.retries and err.retryable

    # ---- the requests ----

    @staticmethod
    def _publish(agent_id: str, type: str, data: Optional[Mapping[str, Any]], key: Optional[str]) -> "_Request[int]":
        body: Dict[str, Any] = {"type": type}
        if data is not None:
            body["data"] = data
        return _Request("POST", f"/api/agents/{segment(agent_id)}/events", _seq_of, body=body, idempotency_key=key)

    @staticmethod
    def _history(agent_id: str, since: int, limit: Optional[int]) -> "_Request[HistoryPage]":
        return _Request("GET", f"/api/agents/{segment(agent_id)}/events", HistoryPage.from_json,
                        query=_optional(since=since, limit=limit))

    @staticmethod
    def _create_workflow(agent_id: str, name: str, metadata: Optional[Mapping[str, Any]],
                         key: Optional[str]) -> "_Request[Dict[str, Any]]":
        body: Dict[str, Any] = {"agent_id": agent_id, "name": name}
        if metadata is not None:
            body["metadata"] = metadata
        return _dict_request("POST", "/api/workflows", body=body, idempotency_key=key)

    @staticmethod
    def _stream_text(stream_id: str) -> "_Request[Optional[str]]":
        return _Request("GET", f"/api/streams/{segment(stream_id)}", _text_of)

    @staticmethod
    def _workflow_streams(workflow_id: str) -> "_Request[List[Dict[str, Any]]]":
        return _Request("GET", f"/api/workflows/{segment(workflow_id)}/streams", _streams_of)

    @staticmethod
    def _agents(limit: Optional[int], after: Optional[str]) -> "_Request[Dict[str, Any]]":
        return _dict_request("GET", "/api/agents", query=_optional(limit=limit, after=after))


class Publisher(_Base):
    """Blocking client for the HTTP API (publish, history, stats, workflows, streams).

    Thread-safe: it holds no connection between calls, so one instance can serve many threads.
    """

    def _call(self, req: "_Request[T]") -> T:
        path, body, headers = self._prepare(req)
        attempt = 0
        while True:
            try:
                response = _http.sync_request(self.endpoint, req.method, path, body, headers, self.timeout,
                                              self.ssl_context)
                return req.parse(_http.decode_json(response))
            except AgentwireError as err:
                if not self._may_retry(err, attempt):
                    raise
                time.sleep(self.backoff.delay(attempt))
                attempt += 1

    # ---- events ----

    def publish(self, agent_id: str, type: str, data: Optional[Mapping[str, Any]] = None,
                idempotency_key: Optional[str] = None) -> int:
        """Publishes one event on ``agent_id``'s channel and returns its seq.

        The event is on disk when this returns. Pass an ``idempotency_key`` to make the call safe to
        repeat: the server then answers a repeat with the original seq instead of storing it again.
        """
        return self._call(self._publish(agent_id, type, data, idempotency_key))

    def history(self, agent_id: str, since: int = 0, limit: Optional[int] = None) -> HistoryPage:
        """Events after ``since`` still in the server's history (at most ``limit``, 1–1000, default 100)."""
        return self._call(self._history(agent_id, since, limit))

    def stats(self) -> Dict[str, Any]:
        """The server's counters (``GET /api/websocket/stats``): connections, messages, publishes, …"""
        return self._call(_dict_request("GET", "/api/websocket/stats"))

    def health(self) -> Dict[str, Any]:
        """``GET /healthz``: ``{"status": "ok"}`` when the server is up."""
        return self._call(_dict_request("GET", "/healthz"))

    # ---- workflows ----

    def create_workflow(self, agent_id: str, name: str, metadata: Optional[Mapping[str, Any]] = None,
                        idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Creates a workflow for ``agent_id``; returns the workflow document (its ``id`` names it from now on).

        Subscribers of the agent see a ``workflow_created`` event.
        """
        return self._call(self._create_workflow(agent_id, name, metadata, idempotency_key))

    def get_workflow(self, workflow_id: str) -> Dict[str, Any]:
        """The workflow document: phase, progress, requirements, streams, timestamps."""
        return self._call(_dict_request("GET", f"/api/workflows/{segment(workflow_id)}"))

    def list_workflows(self, agent_id: str, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        """``{"agent_id", "workflows": [...], "next_cursor"}``, oldest first; pass ``next_cursor`` back for
        the next page."""
        return self._call(_dict_request("GET", f"/api/agents/{segment(agent_id)}/workflows",
                                   query=_optional(limit=limit, cursor=cursor)))

    def submit_requirements(self, workflow_id: str, text: Optional[str] = None, items: Optional[List[Any]] = None,
                            idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Submits (or revises) the workflow's requirements: ``text``, ``items`` (objects or strings) or both."""
        return self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/requirements",
                                   body=_optional(text=text, items=items), idempotency_key=idempotency_key))

    def set_phase(self, workflow_id: str, phase: str, reason: Optional[str] = None,
                  idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Moves the workflow to ``phase``; an illegal transition raises ``AgentwireError(409,
        "illegal_transition")`` whose ``details["allowed"]`` lists the legal ones."""
        return self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/phase",
                                   body=_optional(phase=phase, reason=reason), idempotency_key=idempotency_key))

    def set_progress(self, workflow_id: str, percent: float, message: Optional[str] = None,
                     idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Reports progress (0–100) with an optional message."""
        return self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/progress",
                                   body=_optional(percent=percent, message=message), idempotency_key=idempotency_key))

    def cancel_workflow(self, workflow_id: str, reason: Optional[str] = None,
                        idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """A phase change to ``cancelled``."""
        return self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/cancel",
                                   body=_optional(reason=reason), idempotency_key=idempotency_key))

    def delete_workflow(self, workflow_id: str, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Deletes a finished workflow and its streams."""
        return self._call(_dict_request("DELETE", f"/api/workflows/{segment(workflow_id)}",
                                   idempotency_key=idempotency_key))

    # ---- AI output streams ----

    def open_stream(self, workflow_id: str, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Opens an output stream on a workflow: ``{"stream_id", "workflow_id", "status", "seq"}``."""
        return self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/streams", body={},
                                   idempotency_key=idempotency_key))

    def append_stream(self, stream_id: str, delta: str, index: Optional[int] = None,
                      idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Appends a piece of output: ``{"stream_id", "index", "seq"}``.

        Pass ``index`` (0, 1, 2 …) to have the server refuse an out-of-order or repeated append with 409
        ``index_mismatch`` — the cheap way to make appends safe to retry.
        """
        return self._call(_dict_request("POST", f"/api/streams/{segment(stream_id)}/append",
                                   body=_optional(delta=delta, index=index), idempotency_key=idempotency_key))

    def end_stream(self, stream_id: str, status: str = "completed", reason: Optional[str] = None,
                   idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """Ends a stream as ``completed`` or ``failed``; returns its summary (deltas, length, bytes, seq)."""
        return self._call(_dict_request("POST", f"/api/streams/{segment(stream_id)}/end",
                                   body=_optional(status=status, reason=reason), idempotency_key=idempotency_key))

    def get_stream(self, stream_id: str) -> Dict[str, Any]:
        """A stream's summary and ``text``: so far while it is streaming, what it ended with once ended."""
        return self._call(_dict_request("GET", f"/api/streams/{segment(stream_id)}"))

    def stream_text(self, stream_id: str) -> Optional[str]:
        """A stream's text, whatever its status (the server keeps an ended stream's text as long as its
        workflow); ``None`` only for a stream that ended on a server that did not keep it."""
        return self._call(self._stream_text(stream_id))

    def workflow_streams(self, workflow_id: str) -> List[Dict[str, Any]]:
        """The workflow's streams in the order they started: summaries (status, deltas, bytes, times), no
        text; fetch a finished one's with :meth:`stream_text`."""
        return self._call(self._workflow_streams(workflow_id))

    def agents(self, limit: Optional[int] = None, after: Optional[str] = None) -> Dict[str, Any]:
        """``{"agents": [{"agent_id", "workflows", "updated"}, ...], "next"}``: the agents that have
        workflows, by id; pass ``next`` back as ``after`` for the next page (``None`` on the last)."""
        return self._call(self._agents(limit, after))

    def all_agents(self, page_size: Optional[int] = None) -> List[Dict[str, Any]]:
        """Every agent that has workflows, page after page."""
        out: List[Dict[str, Any]] = []
        after: Optional[str] = None
        while True:
            page = self.agents(limit=page_size, after=after)
            out.extend(page.get("agents", []))
            after = page.get("next")
            if not after:
                return out


class AsyncPublisher(_Base):
    """The asyncio twin of :class:`Publisher`: the same methods, as coroutines.

    Each call opens its own connection, so concurrent calls from many tasks are fine, and cancelling a call
    (``asyncio.wait_for``, task cancellation) closes its connection at once.
    """

    async def _call(self, req: "_Request[T]") -> T:
        path, body, headers = self._prepare(req)
        attempt = 0
        while True:
            try:
                response = await _http.async_request(self.endpoint, req.method, path, body, headers, self.timeout,
                                                     self.ssl_context)
                return req.parse(_http.decode_json(response))
            except AgentwireError as err:
                if not self._may_retry(err, attempt):
                    raise
                await asyncio.sleep(self.backoff.delay(attempt))
                attempt += 1

    async def publish(self, agent_id: str, type: str, data: Optional[Mapping[str, Any]] = None,
                      idempotency_key: Optional[str] = None) -> int:
        """See :meth:`Publisher.publish`."""
        return await self._call(self._publish(agent_id, type, data, idempotency_key))

    async def history(self, agent_id: str, since: int = 0, limit: Optional[int] = None) -> HistoryPage:
        """See :meth:`Publisher.history`."""
        return await self._call(self._history(agent_id, since, limit))

    async def stats(self) -> Dict[str, Any]:
        """See :meth:`Publisher.stats`."""
        return await self._call(_dict_request("GET", "/api/websocket/stats"))

    async def health(self) -> Dict[str, Any]:
        """See :meth:`Publisher.health`."""
        return await self._call(_dict_request("GET", "/healthz"))

    async def create_workflow(self, agent_id: str, name: str, metadata: Optional[Mapping[str, Any]] = None,
                              idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.create_workflow`."""
        return await self._call(self._create_workflow(agent_id, name, metadata, idempotency_key))

    async def get_workflow(self, workflow_id: str) -> Dict[str, Any]:
        """See :meth:`Publisher.get_workflow`."""
        return await self._call(_dict_request("GET", f"/api/workflows/{segment(workflow_id)}"))

    async def list_workflows(self, agent_id: str, limit: Optional[int] = None,
                             cursor: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.list_workflows`."""
        return await self._call(_dict_request("GET", f"/api/agents/{segment(agent_id)}/workflows",
                                         query=_optional(limit=limit, cursor=cursor)))

    async def submit_requirements(self, workflow_id: str, text: Optional[str] = None,
                                  items: Optional[List[Any]] = None,
                                  idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.submit_requirements`."""
        return await self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/requirements",
                                         body=_optional(text=text, items=items), idempotency_key=idempotency_key))

    async def set_phase(self, workflow_id: str, phase: str, reason: Optional[str] = None,
                        idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.set_phase`."""
        return await self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/phase",
                                         body=_optional(phase=phase, reason=reason), idempotency_key=idempotency_key))

    async def set_progress(self, workflow_id: str, percent: float, message: Optional[str] = None,
                           idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.set_progress`."""
        return await self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/progress",
                                         body=_optional(percent=percent, message=message),
                                         idempotency_key=idempotency_key))

    async def cancel_workflow(self, workflow_id: str, reason: Optional[str] = None,
                              idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.cancel_workflow`."""
        return await self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/cancel",
                                         body=_optional(reason=reason), idempotency_key=idempotency_key))

    async def delete_workflow(self, workflow_id: str, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.delete_workflow`."""
        return await self._call(_dict_request("DELETE", f"/api/workflows/{segment(workflow_id)}",
                                         idempotency_key=idempotency_key))

    async def open_stream(self, workflow_id: str, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.open_stream`."""
        return await self._call(_dict_request("POST", f"/api/workflows/{segment(workflow_id)}/streams", body={},
                                         idempotency_key=idempotency_key))

    async def append_stream(self, stream_id: str, delta: str, index: Optional[int] = None,
                            idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.append_stream`."""
        return await self._call(_dict_request("POST", f"/api/streams/{segment(stream_id)}/append",
                                         body=_optional(delta=delta, index=index), idempotency_key=idempotency_key))

    async def end_stream(self, stream_id: str, status: str = "completed", reason: Optional[str] = None,
                         idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.end_stream`."""
        return await self._call(_dict_request("POST", f"/api/streams/{segment(stream_id)}/end",
                                         body=_optional(status=status, reason=reason),
                                         idempotency_key=idempotency_key))

    async def get_stream(self, stream_id: str) -> Dict[str, Any]:
        """See :meth:`Publisher.get_stream`."""
        return await self._call(_dict_request("GET", f"/api/streams/{segment(stream_id)}"))

    async def stream_text(self, stream_id: str) -> Optional[str]:
        """See :meth:`Publisher.stream_text`."""
        return await self._call(self._stream_text(stream_id))

    async def workflow_streams(self, workflow_id: str) -> List[Dict[str, Any]]:
        """See :meth:`Publisher.workflow_streams`."""
        return await self._call(self._workflow_streams(workflow_id))

    async def agents(self, limit: Optional[int] = None, after: Optional[str] = None) -> Dict[str, Any]:
        """See :meth:`Publisher.agents`."""
        return await self._call(self._agents(limit, after))

    async def all_agents(self, page_size: Optional[int] = None) -> List[Dict[str, Any]]:
        """See :meth:`Publisher.all_agents`."""
        out: List[Dict[str, Any]] = []
        after: Optional[str] = None
        while True:
            page = await self.agents(limit=page_size, after=after)
            out.extend(page.get("agents", []))
            after = page.get("next")
            if not after:
                return out
