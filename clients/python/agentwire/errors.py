"""Typed errors, so callers can branch on what went wrong instead of parsing strings.

The server answers every failed HTTP request with ``{"error": {"code", "message", ...}}``; the ``code``
is stable and meant for programs (``bad_agent_id``, ``workflow_not_found``, ``store_full`` …), the
``message`` is for people. :class:`AgentwireError` carries both plus the HTTP status, and any extra members
the server put in the error object (``details``), e.g. the allowed phases of an illegal transition.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Type


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


class AgentwireAuthError(AgentwireError):
    """The server refused the credentials (401) or what they allow (403). Never retried as is: a retry with
    the same token or key gets the same answer. The two subclasses tell which."""


class AuthenticationError(AgentwireAuthError):
    """401: no usable credentials — ``token_missing``, ``token_invalid``, ``token_expired`` (or the API key's
    equivalents). A subscription with a ``token_provider`` asks it for a new token and tries again a few
    times before raising this; with a fixed token it raises at once."""


class PermissionDeniedError(AgentwireAuthError):
    """403: the credentials are genuine but do not allow this — ``agent_forbidden`` (the token's agents
    claim), a missing scope, or a refused origin. A subscription gives up with it at once."""


def error_for(status: int, code: str, message: str, details: Optional[Mapping[str, Any]] = None) -> AgentwireError:
    """The typed error for a refusal: :class:`AuthenticationError` for 401, :class:`PermissionDeniedError`
    for 403, :class:`AgentwireError` otherwise."""
    cls: Type[AgentwireError] = {401: AuthenticationError, 403: PermissionDeniedError}.get(status, AgentwireError)
    return cls(status, code, message, details)
