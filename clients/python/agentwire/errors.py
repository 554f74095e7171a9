"""Typed errors, so callers can branch on what went wrong instead of parsing strings.

The server answers every failed HTTP request with ``{"error": {"code", "message", ...}}``; the ``code``
is stable and meant for programs (``bad_agent_id``, ``workflow_not_found``, ``store_full`` …), the
``message`` is for people. :class:`AgentwireError` carries both plus the HTTP status, and any extra members
the server put in the error object (``details``), e.g. the allowed phases of an illegal transition.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional


class AgentwireError(Exception):
    """The server refused a request, or could not be reached (see :class:`AgentwireConnectionError`).

    ``status`` is the HTTP status (0 when no HTTP answer was received), ``code`` the server's
    machine-readable error code, ``message`` its human-readable explanation.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later unchanged.

        503s other than ``store_full`` are transient (overloaded, shutting down, store briefly unavailable);
        ``store_full`` needs an operator, and 4xx answers mean the request itself is wrong.
        """
        return self.status == 0 or (self.status == 503 and self.code != "store_full") or self.status in (408, 429)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class AgentwireConnectionError(AgentwireError):
    """No HTTP answer at all: connection refused or reset, timeout, malformed response.

    A subclass of :class:`AgentwireError` (status 0, code ``connection_failed``) so one ``except`` clause
    covers both, while callers that retry can still tell "the server said no" from "nobody answered".
    """

    def __init__(self, message: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(0, "connection_failed", message)
        self.cause = cause
