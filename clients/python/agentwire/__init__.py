"""agentwire: the Python client for the agentwire real-time update server.

Subscribe to an agent's events over WebSocket — with automatic reconnect, lossless resume and snapshot
fallback — and publish or read over HTTP::

    from agentwire import AgentwireClient, Publisher

    client = AgentwireClient("http://127.0.0.1:8080")
    async with client.subscribe("agent-7") as sub:
        async for event in sub:
            print(event.seq, event.type, event.data)

    Publisher("http://127.0.0.1:8080").publish("agent-7", "progress", {"percent": 40})

Only the standard library and ``websockets`` (Debian's python3-websockets 10.4 or later) are needed.
"""

from .backoff import Backoff
from .client import (
    AgentwireClient,
    ConnectionState,
    Position,
    SequenceTracker,
    StateChange,
    Subscription,
    TokenProvider,
)
from .errors import (
    AgentwireAuthError,
    AgentwireConnectionError,
    AgentwireError,
    AuthenticationError,
    PermissionDeniedError,
)
from .events import (
    Event,
    PhaseChanged,
    Progress,
    RequirementsSubmitted,
    Snapshot,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    StreamStarted,
    WorkflowCreated,
    WorkflowDeleted,
    event_from_envelope,
)
from .publisher import AsyncPublisher, HistoryPage, Publisher

__version__ = "0.1.0"

__all__ = [
    "AgentwireAuthError",
    "AgentwireClient",
    "AgentwireConnectionError",
    "AgentwireError",
    "AsyncPublisher",
    "AuthenticationError",
    "Backoff",
    "ConnectionState",
    "Event",
    "HistoryPage",
    "PermissionDeniedError",
    "PhaseChanged",
    "Position",
    "Progress",
    "Publisher",
    "RequirementsSubmitted",
    "SequenceTracker",
    "Snapshot",
    "StateChange",
    "StreamDelta",
    "StreamEnd",
    "StreamEvent",
    "StreamStarted",
    "Subscription",
    "TokenProvider",
    "WorkflowCreated",
    "WorkflowDeleted",
    "event_from_envelope",
    "__version__",
]
