"""The data directory under abuse: disk use bounded by the quota or the history size during long publish
runs (the WAL is checkpointed while the server runs), one server per directory whatever gets deleted,
a lost channels row rebuilt, and a quick stop after a heavy run.

Disk use is measured as the files' allocated blocks (awtest.dir_bytes), sampled during the run by a
thread of its own, never from the server's counters.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

import awtest

MIB = 1024 * 1024
KIB = 1024
# What docs/operations.md ("Disk use: the quota and its slack") allows beside the database: the WAL,
# checkpointed once it holds a quarter of the database's pages, at least 256 KiB, at most 4 MiB or an
# eighth of --store-max-bytes when that is less (256 KiB for the 2M quota here), plus the pages of one
# transaction (well under 512 KiB for the small events here), and the 32 KiB WAL index.
TRANSACTION = 512 * KIB
SHM_BYTES = 32 * KIB
QUOTA_WAL = 2 * MIB // 8 + TRANSACTION
QUOTA_SLACK = QUOTA_WAL + SHM_BYTES
WAL = 4 * MIB + TRANSACTION
EVENTS_PER_ROUND = 500
PAD = "x" * 100


class DiskSampler:
    """Samples the data dir's bytes on disk in a thread until stopped; keeps the largest seen."""

    def __init__(self, path: Path):
        self.path = path
        self.largest = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-sampler", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.005)

    def sample(self) -> int:
        size = awtest.dir_bytes(self.path)
        self.largest = max(self.largest, size)
        self.samples += 1
        return size

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        self.sample()
        return self.largest


def bodies(first: int, count: int, pad: str = PAD) -> list[bytes]:
    return [json.dumps({"type": "t", "data": {"i": first + i, "pad": pad}}).encode() for i in range(count)]


def publish_rounds(server, data_dir: Path, rounds: int, agents: int, sampler: DiskSampler, pad: str = PAD):
    """Pipelined rounds over `agents` channels (each acknowledged 202), sampling the disk after each too."""
    n = 0
    for r in range(rounds):
        awtest.pipeline_publish(server, f"disk-{r % agents}", bodies(n, EVENTS_PER_ROUND, pad))
        n += EVENTS_PER_ROUND
        sampler.sample()
    return n


def wal_bytes(data_dir: Path) -> int:
    wal = data_dir / "events.db-wal"
    return wal.stat().st_blocks * 512 if wal.exists() else 0


def test_long_run_under_a_quota_stays_within_quota_plus_slack(tmp_path):
    # 24k events of ~130 bytes: 3 MB of rows, more than the quota, but the history keeps 10 per channel,
    # so the quota is never truly reached and every publish must be acknowledged.
    data = tmp_path / "data"
    quota = 2 * MIB
    server = awtest.Server(data, ["--history-size", "10", "--store-max-bytes", "2M"])
    sampler = DiskSampler(data)
    try:
        total = publish_rounds(server, data, 48, 4, sampler)
    finally:
        largest = sampler.stop()
    assert total == 24_000
    assert largest <= quota + QUOTA_SLACK, (
        f"data dir reached {largest} bytes on disk (quota {quota} + slack {QUOTA_SLACK}), {sampler.samples} samples"
    )
    assert wal_bytes(data) <= QUOTA_WAL, f"WAL left at {wal_bytes(data)} bytes"
    assert "store_append_failed" not in server.log
    rc, _ = server.stop()
    assert rc == 0


@pytest.mark.embedded_only('--store-max-bytes bounds the SQLite file; in Redis mode the events are in Redis')
def test_quota_answers_store_full_only_when_the_database_is_full(tmp_path):
    # No pruning within the run (a large history): the rows themselves fill the quota. The first 503 must
    # come when the database holds about the quota, and the files stay within quota + slack throughout.
    data = tmp_path / "data"
    quota = 2 * MIB
    server = awtest.Server(data, ["--history-size", "1000000", "--store-max-bytes", "2M"])
    sampler = DiskSampler(data)
    refused = None
    acknowledged = 0
    try:
        for r in range(200):
            conn = awtest.RawHttp(server.host, server.port)
            try:
                conn.send(b"".join(awtest.post_request_bytes(server.host, server.port, "full", b)
                                   for b in bodies(acknowledged, EVENTS_PER_ROUND)))
                for _ in range(EVENTS_PER_ROUND):
                    status, _, body = conn.read_response()
                    if status == 202:
                        acknowledged += 1
                        continue
                    assert status == 503 and body["error"]["code"] == "store_full", (status, body)
                    refused = refused or body
            finally:
                conn.close()
            sampler.sample()
            if refused:
                break
    finally:
        largest = sampler.stop()
    assert refused, f"{acknowledged} events ({acknowledged * 150} bytes of rows) never filled a 2M quota"
    assert largest <= quota + QUOTA_SLACK, f"data dir reached {largest} bytes on disk (quota {quota} + slack {QUOTA_SLACK})"
    rc, _ = server.stop()
    assert rc == 0
    # Stopped, the WAL is folded back: the database itself shows how full it was at the first 503.
    db = data / "events.db"
    assert db.stat().st_size >= quota * 0.85, f"503 store_full with the database at {db.stat().st_size} bytes"
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    assert stored == acknowledged


def test_disk_stays_bounded_by_the_history_size_without_a_quota(tmp_path):
    # 30k events on 3 channels with --history-size 10: what the history implies is a few hundred rows.
    data = tmp_path / "data"
    server = awtest.Server(data, ["--history-size", "10"])
    sampler = DiskSampler(data)
    try:
        publish_rounds(server, data, 60, 3, sampler)
    finally:
        largest = sampler.stop()
    # The rows kept are a few hundred KiB at most, so the WAL beside them stays at its 256 KiB minimum.
    bound = 512 * KIB + 256 * KIB + TRANSACTION + SHM_BYTES
    assert largest <= bound, f"data dir reached {largest} bytes on disk (bound {bound}), {sampler.samples} samples"
    status, _, page = server.http("GET", "/api/agents/disk-0/events?since=0")
    assert status == 200 and page["latest"] == 10_000, page
    rc, _ = server.stop()
    assert rc == 0


def test_sigterm_after_a_long_full_speed_run_exits_within_5s(tmp_path):
    # 20k events of ~1 KB as fast as the server takes them (the default history keeps 1000 per channel):
    # before the fix the WAL grew to tens of MB and the close had to fold all of it back.
    data = tmp_path / "data"
    server = awtest.Server(data)
    sampler = DiskSampler(data)
    try:
        publish_rounds(server, data, 40, 8, sampler, pad="y" * 1000)
    finally:
        sampler.stop()
    assert wal_bytes(data) <= WAL + 1 * MIB, f"WAL at {wal_bytes(data)} bytes after the run"
    rc, took = server.stop(signal.SIGTERM, timeout=30)
    assert rc == 0
    assert took < 5.0, f"SIGTERM took {took:.2f} s"
    assert not (data / "events.db-wal").exists() or wal_bytes(data) == 0


# ---- one server per data directory ----


def start_raw(data: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [awtest.binary_path(), "--listen", "127.0.0.1:0", "--data-dir", str(data)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
        env=awtest.clean_env(),
    )


def listening(log: Path) -> bool:
    return awtest.LISTENING_RE.search(log.read_text("utf-8", "replace")) is not None


def assert_refused(proc: subprocess.Popen, log: Path):
    try:
        rc = proc.wait(awtest.START_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"a second server on the same data dir kept running\n{log.read_text()}")
    text = log.read_text("utf-8", "replace")
    assert rc != 0, text
    assert "in use by another agentwire process" in text, text
    assert not listening(log), text


@pytest.mark.embedded_only("the data directory's lock guards the SQLite file; in Redis mode nodes share their data by design")
def test_second_instance_is_refused_even_after_the_lock_file_is_deleted(tmp_path):
    data = tmp_path / "data"
    first = awtest.Server(data)
    assert first.publish("lock", "t", {"n": 1}) == 1
    # What an operator tidying the directory might do; earlier versions locked this file.
    (data / "events.db-lock").unlink(missing_ok=True)
    log = tmp_path / "second.log"
    assert_refused(start_raw(data, log), log)
    # The first server is unharmed and alone: numbering goes on without a duplicate.
    assert first.publish("lock", "t", {"n": 2}) == 2
    rc, _ = first.stop()
    assert rc == 0


def test_two_instances_racing_on_one_data_dir_exactly_one_runs(tmp_path):
    for attempt in range(3):
        data = tmp_path / f"data{attempt}"
        data.mkdir()
        logs = [tmp_path / f"race{attempt}-{i}.log" for i in range(2)]
        procs = [start_raw(data, log) for log in logs]
        try:
            awtest.wait_until(
                lambda: any(p.poll() is not None for p in procs) and any(listening(log) for log in logs),
                awtest.START_TIMEOUT,
                "one server listening and the other exited",
            )
            winners = [i for i in range(2) if procs[i].poll() is None]
            assert len(winners) == 1, [log.read_text() for log in logs]
            loser = 1 - winners[0]
            assert_refused(procs[loser], logs[loser])
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    p.wait(awtest.STOP_TIMEOUT)
        assert procs[winners[0]].returncode == 0


# ---- a channels row lost ----


@pytest.mark.embedded_only('edits the SQLite file')
def test_missing_channels_row_is_rebuilt_and_numbering_continues(tmp_path):
    data = tmp_path / "data"
    server = awtest.Server(data)
    for n in range(1, 6):
        assert server.publish("orphan", "t", {"n": n}) == n
    status, _, before = server.http("GET", "/api/agents/orphan/events?since=0")
    assert status == 200
    rc, _ = server.stop()
    assert rc == 0

    with sqlite3.connect(data / "events.db") as conn:
        conn.execute("DELETE FROM channels WHERE agent_id = 'orphan'")
    conn.close()

    server = awtest.Server(data)
    line = next((l for l in server.lines if "store_channel_rebuilt" in l), None)
    assert line is not None and "agent_id=orphan" in line and "last_seq=5" in line, server.log
    status, _, page = server.http("GET", "/api/agents/orphan/events?since=0")
    assert status == 200
    assert page["latest"] == 5 and [e["seq"] for e in page["events"]] == [1, 2, 3, 4, 5], page
    assert page["epoch"] != before["epoch"], "the lost row's epoch cannot be known: a new one says so"
    assert server.publish("orphan", "t", {"n": 6}) == 6
    rc, _ = server.stop()
    assert rc == 0
