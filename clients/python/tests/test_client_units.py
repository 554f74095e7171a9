"""The client's rules without a server: ordering and de-duplication, backoff bounds, event typing, URLs.

These pin down the behaviour the end-to-end tests can only provoke by chance (a duplicate or a stale
snapshot from the server), and run in milliseconds.
"""

from __future__ import annotations

import random

import pytest

from agentwire import (
    Backoff,
    Event,
    PhaseChanged,
    Position,
    Progress,
    RequirementsSubmitted,
    SequenceTracker,
    Snapshot,
    StreamDelta,
    StreamEnd,
    StreamEvent,
    StreamStarted,
    WorkflowCreated,
    WorkflowDeleted,
    event_from_envelope,
)
from agentwire._http import Endpoint, HttpResponse, decode_json
from agentwire.errors import AgentwireConnectionError, AgentwireError


def env(seq: int, type_: str = "t", data=None, agent: str = "a1") -> dict:
    return {"type": type_, "agent_id": agent, "seq": seq, "ts": "2026-11-25T17:00:00.123Z", "data": data or {}}


def snap(seq: int, epoch: str) -> Snapshot:
    ev = event_from_envelope({"type": "snapshot", "agent_id": "a1", "ts": "2026-11-25T17:00:00Z",
                              "data": {"seq": seq, "epoch": epoch, "recovered": False, "state": {}}})
    assert isinstance(ev, Snapshot)
    return ev


# ---- SequenceTracker ---------------------------------------------------------------------------------------


def test_fresh_tracker_starts_at_the_connected_position():
    t = SequenceTracker()
    assert t.resume_query() == {}
    t.on_connected({"seq": 10, "epoch": "E"})
    assert t.position == Position(10, "E")
    assert t.resume_query() == {"since": 10, "epoch": "E"}
    # a later connected (a resume) does not move a known position
    t.on_connected({"seq": 99, "epoch": "E"})
    assert t.position == Position(10, "E")


def test_duplicates_and_old_events_are_dropped():
    t = SequenceTracker(Position(0, "E"))
    delivered = [ev.seq for ev in map(event_from_envelope, (env(s) for s in [1, 2, 2, 1, 3, 3, 4, 2, 5])) if t.accept(ev)]
    assert delivered == [1, 2, 3, 4, 5]
    assert t.dropped == 4
    assert t.position == Position(5, "E")


def test_a_gap_is_delivered_but_counted():
    t = SequenceTracker(Position(1, "E"))
    assert t.accept(event_from_envelope(env(3)))
    assert t.gaps == 1 and t.position == Position(3, "E")


def test_snapshot_in_a_new_epoch_resets_the_position():
    t = SequenceTracker(Position(50, "old"))
    assert t.accept(snap(7, "new"))
    assert t.position == Position(7, "new")
    assert t.accept(event_from_envelope(env(8)))
    assert t.position == Position(8, "new")


def test_stale_snapshot_in_the_same_epoch_never_moves_back():
    t = SequenceTracker(Position(20, "E"))
    t.apply_snapshot(snap(15, "E"))
    assert t.position == Position(20, "E")
    assert not t.accept(event_from_envelope(env(18)))
    t.apply_snapshot(snap(30, "E"))
    assert t.position == Position(30, "E")
    assert not t.accept(event_from_envelope(env(30)))
    assert t.accept(event_from_envelope(env(31)))


def merged(first_seq: int, seq: int, type_: str = "t", data=None) -> dict:
    return {**env(seq, type_, data), "first_seq": first_seq}


def test_a_merged_message_that_follows_on_is_no_gap_and_moves_to_its_seq():
    t = SequenceTracker(Position(8, "E"))
    ev = event_from_envelope(merged(9, 12))
    assert (ev.first_seq, ev.seq, ev.merged) == (9, 12, True)
    assert t.accept(ev)
    assert t.gaps == 0 and t.position == Position(12, "E")
    # the next one follows on from seq + 1, merged or not
    assert t.accept(event_from_envelope(env(13)))
    assert t.accept(event_from_envelope(merged(14, 20)))
    assert t.accept(event_from_envelope(env(21)))
    assert t.gaps == 0 and t.dropped == 0 and t.position == Position(21, "E")


def test_a_merged_message_already_delivered_is_dropped_by_its_seq():
    t = SequenceTracker(Position(12, "E"))
    assert not t.accept(event_from_envelope(merged(9, 12)))
    assert not t.accept(event_from_envelope(merged(3, 5)))
    assert t.dropped == 2 and t.gaps == 0 and t.position == Position(12, "E")


def test_a_merged_message_overlapping_the_position_is_new_not_a_gap():
    t = SequenceTracker(Position(10, "E"))
    assert t.accept(event_from_envelope(merged(9, 12)))
    assert t.gaps == 0 and t.dropped == 0 and t.position == Position(12, "E")


def test_a_merged_message_starting_past_the_next_seq_is_a_gap():
    t = SequenceTracker(Position(8, "E"))
    assert t.accept(event_from_envelope(merged(10, 12)))
    assert t.gaps == 1 and t.position == Position(12, "E")


def test_since_zero_without_epoch_asks_for_everything():
    t = SequenceTracker(Position(0, ""))
    assert t.resume_query() == {"since": 0}


# ---- Backoff -----------------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_an_exponential_cap():
    b = Backoff(base=0.5, max=8.0)
    assert [b.cap(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    rng = random.Random(7)
    for n in range(12):
        delays = [b.delay(n, rng) for _ in range(300)]
        assert all(0.0 <= d <= b.cap(n) for d in delays)
        # spread over the whole interval, not clustered at the cap
        assert min(delays) < 0.2 * b.cap(n) and max(delays) > 0.8 * b.cap(n)
    assert b.cap(10_000) == 8.0


def test_backoff_rejects_nonsense():
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(base=2, max=1)


# ---- event typing ------------------------------------------------------------------------------------------


def test_known_types_get_their_classes():
    assert type(event_from_envelope(env(1, "workflow_created", {"id": "wf_1", "name": "n"}))) is WorkflowCreated
    assert event_from_envelope(env(1, "workflow_created", {"id": "wf_1"})).workflow_id == "wf_1"
    r = event_from_envelope(env(2, "requirements_submitted", {"workflow_id": "wf_1", "requirements": {"text": "x", "items": [1]}}))
    assert isinstance(r, RequirementsSubmitted) and r.text == "x" and r.items == [1]
    p = event_from_envelope(env(3, "phase_changed", {"workflow_id": "wf_1", "from": "design", "to": "testing"}))
    assert isinstance(p, PhaseChanged) and (p.from_phase, p.to_phase) == ("design", "testing")
    g = event_from_envelope(env(4, "progress", {"workflow_id": "wf_1", "percent": 40, "message": "m"}))
    assert isinstance(g, Progress) and g.percent == 40 and g.message == "m"
    assert isinstance(event_from_envelope(env(5, "workflow_deleted", {"workflow_id": "wf_1"})), WorkflowDeleted)


def test_stream_events_are_told_apart_by_their_data():
    s = event_from_envelope(env(1, "stream", {"stream_id": "st_1", "workflow_id": "wf_1", "started": True}))
    d = event_from_envelope(env(2, "stream", {"stream_id": "st_1", "workflow_id": "wf_1", "index": 0, "delta": "hi"}))
    e = event_from_envelope(env(3, "stream", {"stream_id": "st_1", "status": "completed", "done": True, "deltas": 1}))
    o = event_from_envelope(env(4, "stream", {"stream_id": "st_1"}))
    assert type(s) is StreamStarted and type(d) is StreamDelta and type(e) is StreamEnd and type(o) is StreamEvent
    assert d.delta == "hi" and d.index == 0 and d.stream_id == "st_1"
    assert e.status == "completed" and e.deltas == 1
    assert all(isinstance(x, StreamEvent) for x in (s, d, e, o))


def test_first_seq_defaults_to_seq_and_count_to_one():
    plain = event_from_envelope(env(7, "progress", {"workflow_id": "wf_1", "percent": 10}))
    assert plain.first_seq == 7 and not plain.merged
    assert Event("t", "a", 5, "", {}).first_seq == 5  # built by hand, too
    d = event_from_envelope(env(2, "stream", {"stream_id": "st_1", "workflow_id": "wf_1", "index": 4, "delta": "x"}))
    assert isinstance(d, StreamDelta) and d.count == 1 and d.next_index == 5 and not d.merged
    # unusable first_seq / count values read as absent, never raise
    for bad in ["3", True, None, 9, -1]:
        assert event_from_envelope({**env(8), "first_seq": bad}).first_seq == 8
    for bad in ["3", True, 0, -2, None]:
        odd = event_from_envelope(env(3, "stream", {"stream_id": "s", "index": 0, "delta": "y", "count": bad}))
        assert isinstance(odd, StreamDelta) and odd.count == 1
    nodx = event_from_envelope(env(3, "stream", {"stream_id": "s", "delta": "y"}))
    assert isinstance(nodx, StreamDelta) and nodx.next_index is None


def test_merged_stream_delta_and_progress():
    d = event_from_envelope({"type": "stream", "agent_id": "agent-7", "seq": 12, "first_seq": 9,
                             "ts": "2026-11-25T19:38:41.812Z",
                             "data": {"stream_id": "st_1", "workflow_id": "wf_1", "index": 3, "delta": "abcd",
                                      "count": 4}})
    assert isinstance(d, StreamDelta) and d.merged
    assert (d.first_seq, d.seq, d.index, d.count, d.next_index, d.delta) == (9, 12, 3, 4, 7, "abcd")
    p = event_from_envelope(merged(17, 20, "progress", {"workflow_id": "wf_1", "percent": 80, "message": "m"}))
    assert isinstance(p, Progress) and p.merged and (p.first_seq, p.seq, p.percent) == (17, 20, 80)
    # a snapshot's seq is its data's; a stray first_seq on one means nothing
    s = event_from_envelope({"type": "snapshot", "agent_id": "a", "ts": "t", "first_seq": 1,
                             "data": {"seq": 4, "epoch": "E", "recovered": False, "state": {}}})
    assert s.first_seq == 4 and not s.merged


def test_stream_text_assembles_across_plain_and_merged_deltas():
    def delta(seq, index, text, count=None, first_seq=None):
        data = {"stream_id": "st_1", "workflow_id": "wf_1", "index": index, "delta": text}
        if count is not None:
            data["count"] = count
        e = env(seq, "stream", data)
        if first_seq is not None:
            e["first_seq"] = first_seq
        return e

    frames = [
        delta(5, 0, "He"), delta(6, 1, "l"),
        delta(10, 2, "lo, wo", count=4, first_seq=7),   # indexes 2..5, seqs 7..10
        delta(11, 6, "rl"),
        delta(13, 7, "d!", count=2, first_seq=12),      # indexes 7..8
        delta(14, 9, "\n"),
    ]
    t = SequenceTracker(Position(4, "E"))
    text, expected = "", 0
    for frame in frames:
        ev = event_from_envelope(frame)
        assert isinstance(ev, StreamDelta) and t.accept(ev)
        assert ev.index == expected
        text += ev.delta
        expected = ev.next_index
    assert text == "Hello, world!\n" and expected == 10
    assert t.gaps == 0 and t.position == Position(14, "E")


def test_unknown_types_and_odd_data_stay_generic_and_never_raise():
    ev = event_from_envelope(env(9, "custom.thing", {"x": 1}))
    assert type(ev) is Event and ev.kind == "event" and ev.data == {"x": 1}
    odd = event_from_envelope({"type": "progress", "agent_id": "a", "seq": 1, "ts": "", "data": [1, 2]})
    assert isinstance(odd, Progress) and odd.percent is None and odd.time is None
    assert ev.time is not None and ev.time.year == 2026 and ev.time.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("bad", [
    {"type": "connected", "data": {}},
    {"type": "heartbeat", "data": {}},
    {"type": "pong", "data": {}},
    {"type": "error", "data": {"code": "x"}},
    {"type": "progress", "data": {}},  # no seq
    {"type": "progress", "seq": "3", "data": {}},
    {"type": "progress", "seq": True, "data": {}},
    {"data": {}},
])
def test_control_messages_and_unnumbered_envelopes_are_not_events(bad):
    with pytest.raises(ValueError):
        event_from_envelope(bad)


def test_snapshot_fields():
    s = event_from_envelope({"type": "snapshot", "agent_id": "a", "ts": "t",
                             "data": {"seq": 4, "epoch": "E", "recovered": False,
                                      "state": {"workflows": [{"id": "w"}], "streams": []}}})
    assert isinstance(s, Snapshot) and s.seq == 4 and s.epoch == "E" and not s.recovered
    assert s.workflows == [{"id": "w"}] and s.streams == []


# ---- URLs and HTTP answers ---------------------------------------------------------------------------------


def test_endpoint_urls():
    e = Endpoint.parse("http://127.0.0.1:8080/")
    assert e.ws_url("/ws/agents/a", {"since": 3, "epoch": "ab"}) == "ws://127.0.0.1:8080/ws/agents/a?since=3&epoch=ab"
    assert e.ws_url("/ws/agents/a", {}) == "ws://127.0.0.1:8080/ws/agents/a"
    p = Endpoint.parse("https://example.test/agentwire")
    assert p.ws_url("/ws/agents/a") == "wss://example.test/agentwire/ws/agents/a"
    assert p.path("/api/x", {"since": 0, "limit": None}) == "/agentwire/api/x?since=0"
    with pytest.raises(ValueError):
        Endpoint.parse("ftp://x")


def test_error_bodies_become_typed_errors():
    with pytest.raises(AgentwireError) as info:
        decode_json(HttpResponse(409, {}, b'{"error":{"code":"illegal_transition","message":"no","allowed":["a"]}}'))
    assert (info.value.status, info.value.code, info.value.message) == (409, "illegal_transition", "no")
    assert info.value.details == {"allowed": ["a"]} and not info.value.retryable
    with pytest.raises(AgentwireError) as info:
        decode_json(HttpResponse(502, {}, b"<html>bad gateway</html>"))
    assert info.value.code == "http_502"
    with pytest.raises(AgentwireError) as info:
        decode_json(HttpResponse(503, {}, b'{"error":{"code":"overloaded","message":"busy"}}'))
    assert info.value.retryable
    with pytest.raises(AgentwireError) as info:
        decode_json(HttpResponse(503, {}, b'{"error":{"code":"store_full","message":"full"}}'))
    assert not info.value.retryable
    assert AgentwireConnectionError("x").retryable
    assert decode_json(HttpResponse(202, {}, b'{"seq":5}')) == {"seq": 5}
