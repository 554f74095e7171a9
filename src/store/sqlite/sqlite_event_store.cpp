// The SQLite event log: schema, cached statements, group-commit appends and retention.
#include "store/sqlite/sqlite_event_store.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <utility>

namespace aw {
namespace {

constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 5000;
// Nice value of the checkpoint thread (see checkpoint_loop).
constexpr int kCheckpointNice = 10;
// Without a limit the -wal file keeps its largest size ever; this truncates it after checkpoints.
constexpr const char* kJournalSizeLimit = "PRAGMA journal_size_limit=67108864";

// Events live in a rowid table, appended in commit order, with (agent_id, seq) as a unique index rather
// than a WITHOUT ROWID primary key: a group commit spans many channels, and clustering ~250-byte rows by
// channel made each commit rewrite one table page per channel. Measured at 10-2000 channels: appends
// about twice as fast, append + prune together about 1.6x.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channels(
  agent_id TEXT PRIMARY KEY,
  epoch TEXT NOT NULL,
  last_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY,
  agent_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  type TEXT NOT NULL,
  ts_ms INTEGER NOT NULL,
  data TEXT NOT NULL,
  idempotency_key TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_channel ON events(agent_id, seq);
CREATE INDEX IF NOT EXISTS events_by_ts ON events(ts_ms);
CREATE TABLE IF NOT EXISTS state(
  agent_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY(agent_id, kind, id)
) WITHOUT ROWID;
)sql";

bool is_full(int rc) noexcept {
  return (rc & 0xff) == SQLITE_FULL;
}

std::int64_t to_sql_int(std::uint64_t v) noexcept {
  return static_cast<std::int64_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
}

// Resets a cached statement when the scope ends, so it never keeps a read open or holds stale bindings.
class Use {
 public:
  explicit Use(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
  ~Use() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// SQLITE_STATIC: every bound value outlives the step that reads it.
int bind_text(sqlite3_stmt* stmt, int index, std::string_view text) noexcept {
  // A null pointer would bind SQL NULL instead of an empty string.
  const char* data = text.data() != nullptr ? text.data() : "";
  return sqlite3_bind_text64(stmt, index, data, text.size(), SQLITE_STATIC, SQLITE_UTF8);
}

std::string column_text(sqlite3_stmt* stmt, int index) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, index));
  if (text == nullptr) return {};
  return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, index)));
}

std::uint64_t file_size_or_zero(const std::string& path) noexcept {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::uint64_t>(size);
}

}  // namespace

// Rolls back on scope exit unless committed, so every early throw leaves the connection idle and usable.
class SqliteEventStore::Transaction {
 public:
  explicit Transaction(SqliteEventStore& store) : store_(store) {
    // Only if an earlier ROLLBACK itself failed; otherwise every later BEGIN would fail too.
    rollback_if_open();
    store_.run(store_.begin_.get(), "begin");
  }
  ~Transaction() {
    if (!committed_) rollback_if_open();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit() {
    store_.run(store_.commit_.get(), "commit");
    committed_ = true;
  }

 private:
  // SQLite may already have rolled back by itself (e.g. after SQLITE_FULL); a second ROLLBACK would fail.
  void rollback_if_open() noexcept {
    if (sqlite3_get_autocommit(store_.db_.get()) == 0) {
      sqlite3_step(store_.rollback_.get());
      sqlite3_reset(store_.rollback_.get());
    }
  }

  SqliteEventStore& store_;
  bool committed_ = false;
};

void SqliteEventStore::DbCloser::operator()(sqlite3* db) const noexcept {
  sqlite3_close_v2(db);
}

void SqliteEventStore::StmtFinalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  sqlite3_finalize(stmt);
}

SqliteEventStore::SqliteEventStore(std::string path, FsyncMode mode, std::uint64_t max_bytes)
    : path_(std::move(path)) {
  sqlite3* raw = nullptr;
  // NOMUTEX: the threading contract in the header means the connection is never used concurrently.
  const int rc = sqlite3_open_v2(path_.c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  db_.reset(raw);  // even a failed open hands back a handle that must be closed
  if (rc != SQLITE_OK) fail(rc, "cannot open database");
  sqlite3_extended_result_codes(db_.get(), 1);
  // SQLite silently falls back to read-only for a write-protected file; we would only fail later.
  if (sqlite3_db_readonly(db_.get(), "main") != 0) {
    throw StoreError("sqlite store " + path_ + ": cannot open database: file is not writable", false);
  }
  sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);

  // The first statements that read the file: a corrupt or foreign file fails here.
  sqlite3_stmt* raw_journal = nullptr;
  const int prepared = sqlite3_prepare_v2(db_.get(), "PRAGMA journal_mode=WAL", -1, &raw_journal, nullptr);
  Stmt journal(raw_journal);
  if (prepared != SQLITE_OK) fail(prepared, "cannot open database");
  const int step = sqlite3_step(journal.get());
  if (step != SQLITE_ROW) fail(step, "cannot open database");
  if (column_text(journal.get(), 0) != "wal") {
    throw StoreError("sqlite store " + path_ + ": cannot switch the database to WAL mode", false);
  }
  journal.reset();

  const char* synchronous = mode == FsyncMode::always ? "PRAGMA synchronous=FULL"
                            : mode == FsyncMode::off  ? "PRAGMA synchronous=OFF"
                                                      : "PRAGMA synchronous=NORMAL";
  run(prepare(synchronous).get(), "set synchronous");
  run(prepare(kJournalSizeLimit).get(), "set journal_size_limit");
  // The checkpointer thread does this (see checkpoint_loop).
  run(prepare("PRAGMA wal_autocheckpoint=0").get(), "set wal_autocheckpoint");

  create_schema();
  if (max_bytes > 0) set_quota(max_bytes);
  prepare_statements();
  prepare_state_statements();
  count_events();
  checkpointer_ = std::thread([this] { checkpoint_loop(); });
}

SqliteEventStore::~SqliteEventStore() {
  {
    std::lock_guard lock(checkpoint_mutex_);
    stopping_ = true;
  }
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
}

void SqliteEventStore::checkpoint_loop() {
  // Checkpoints copy the WAL into the database: megabytes of work that nobody waits for. At a lower
  // priority they yield the core to the threads that answer publishes and deliver events instead of
  // stalling them for milliseconds (they still get a share when the core is busy, so the WAL stays
  // bounded under sustained load).
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kCheckpointNice);
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    sqlite3_close_v2(raw);
    return;  // the writer's own connection still works; the WAL just grows until the next start
  }
  std::unique_ptr<sqlite3, DbCloser> db(raw);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  std::unique_lock lock(checkpoint_mutex_);
  for (;;) {
    // Often enough that the WAL stays small, rarely enough to cost nothing when idle.
    checkpoint_cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_; });
    bool stop = stopping_;
    lock.unlock();
    int log_frames = 0;
    int done_frames = 0;
    sqlite3_wal_checkpoint_v2(db.get(), "main", stop ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
                              &log_frames, &done_frames);
    lock.lock();
    if (stop) return;
  }
}

void SqliteEventStore::create_schema() {
  // BEGIN IMMEDIATE so two processes starting on a new file do not both try to create it.
  run(prepare("BEGIN IMMEDIATE").get(), "create schema");
  char* message = nullptr;
  const int rc = sqlite3_exec(db_.get(), kSchema, nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    const std::string detail = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw StoreError("sqlite store " + path_ + ": create schema: " + detail, is_full(rc));
  }

  auto select = prepare("SELECT value FROM meta WHERE key = 'schema_version'");
  const int step = sqlite3_step(select.get());
  if (step == SQLITE_ROW) {
    const std::string version = column_text(select.get(), 0);
    if (version != std::to_string(kSchemaVersion)) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw StoreError("sqlite store " + path_ + ": schema version " + version +
                           " is not supported (this build knows version " + std::to_string(kSchemaVersion) +
                           ")",
                       false);
    }
  } else if (step == SQLITE_DONE) {
    auto insert = prepare("INSERT INTO meta(key, value) VALUES('schema_version', ?1)");
    const std::string version = std::to_string(kSchemaVersion);
    bind_text(insert.get(), 1, version);
    run(insert.get(), "create schema");
  } else {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    fail(step, "create schema");
  }
  select.reset();
  run(prepare("COMMIT").get(), "create schema");
}

void SqliteEventStore::set_quota(std::uint64_t max_bytes) {
  auto page_size = prepare("PRAGMA page_size");
  if (sqlite3_step(page_size.get()) != SQLITE_ROW) fail(sqlite3_errcode(db_.get()), "read page_size");
  const auto bytes_per_page = static_cast<std::uint64_t>(sqlite3_column_int64(page_size.get(), 0));
  page_size.reset();
  // SQLite never sets the limit below the current size, so a quota smaller than an existing database
  // means "no growth" until prune() frees pages.
  const std::uint64_t pages =
      std::max<std::uint64_t>(1, max_bytes / std::max<std::uint64_t>(1, bytes_per_page));
  run(prepare("PRAGMA max_page_count=" + std::to_string(pages)).get(), "set max_page_count");
}

void SqliteEventStore::prepare_statements() {
  begin_ = prepare("BEGIN IMMEDIATE");
  commit_ = prepare("COMMIT");
  rollback_ = prepare("ROLLBACK");
  insert_channel_ = prepare(
      "INSERT INTO channels(agent_id, epoch, last_seq) VALUES(?1, ?2, 0) ON CONFLICT(agent_id) DO NOTHING");
  channel_epoch_ = prepare("SELECT epoch FROM channels WHERE agent_id = ?1");
  // ?3 is the batch's lowest seq of the channel: refusing seqs at or below last_seq keeps numbering from
  // ever going back, even when the events that used them were pruned.
  raise_last_seq_ = prepare("UPDATE channels SET last_seq = ?2 WHERE agent_id = ?1 AND last_seq < ?3");
  insert_event_ = prepare(
      "INSERT INTO events(agent_id, seq, type, ts_ms, data, idempotency_key) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  select_channels_ = prepare("SELECT agent_id, epoch, last_seq FROM channels ORDER BY agent_id");
  select_recent_ = prepare(
      "SELECT seq, type, ts_ms, data, idempotency_key FROM events"
      " WHERE agent_id = ?1 AND ts_ms >= ?2 ORDER BY seq DESC LIMIT ?3");
  delete_older_ = prepare("DELETE FROM events WHERE ts_ms < ?1 RETURNING agent_id");
  // Walks only the ?2 + 1 oldest rows of the channel: the cost follows what is deleted, not what is kept.
  delete_oldest_ = prepare(
      "DELETE FROM events WHERE agent_id = ?1 AND seq <= "
      "(SELECT seq FROM events WHERE agent_id = ?1 ORDER BY seq LIMIT 1 OFFSET ?2)");
}

void SqliteEventStore::prepare_state_statements() {
  upsert_state_ = prepare(
      "INSERT INTO state(agent_id, kind, id, json) VALUES(?1, ?2, ?3, ?4)"
      " ON CONFLICT(agent_id, kind, id) DO UPDATE SET json = excluded.json");
  delete_state_ = prepare("DELETE FROM state WHERE agent_id = ?1 AND kind = ?2 AND id = ?3");
  select_state_ = prepare("SELECT kind, id, json FROM state WHERE agent_id = ?1 ORDER BY kind, id");
}

std::vector<StateRecord> SqliteEventStore::load_state(std::string_view agent_id) {
  std::vector<StateRecord> records;
  sqlite3_stmt* stmt = select_state_.get();
  Use use(stmt);
  bind_text(stmt, 1, agent_id);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    records.push_back(
        StateRecord{std::string(agent_id), column_text(stmt, 0), column_text(stmt, 1), column_text(stmt, 2)});
  }
  if (rc != SQLITE_DONE) fail(rc, "load state");
  return records;
}

void SqliteEventStore::count_events() {
  auto count = prepare("SELECT agent_id, count(*) FROM events GROUP BY agent_id");
  std::uint64_t total = 0;
  int rc;
  while ((rc = sqlite3_step(count.get())) == SQLITE_ROW) {
    const auto n = static_cast<std::uint64_t>(sqlite3_column_int64(count.get(), 1));
    counts_.emplace(column_text(count.get(), 0), n);
    total += n;
  }
  if (rc != SQLITE_DONE) fail(rc, "count events");
  events_.store(total, std::memory_order_relaxed);
}

SqliteEventStore::Stmt SqliteEventStore::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) fail(rc, "prepare \"" + std::string(sql) + "\"");
  return Stmt(stmt);
}

// Steps a statement that returns no rows to completion.
void SqliteEventStore::run(sqlite3_stmt* stmt, std::string_view what) {
  Use use(stmt);
  const int rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) fail(rc, what);
}

void SqliteEventStore::fail(int rc, std::string_view what) const {
  // errmsg describes the last failed call on this connection; without a connection only the code is known.
  const char* detail = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
  throw StoreError("sqlite store " + path_ + ": " + std::string(what) + ": " + detail, is_full(rc));
}

std::vector<StoredChannel> SqliteEventStore::load_channels() {
  std::vector<StoredChannel> channels;
  sqlite3_stmt* stmt = select_channels_.get();
  Use use(stmt);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    channels.push_back(StoredChannel{column_text(stmt, 0), column_text(stmt, 1),
                                     static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 2))});
  }
  if (rc != SQLITE_DONE) fail(rc, "load channels");
  return channels;
}

std::vector<StoredEvent> SqliteEventStore::load_recent(std::string_view agent_id, std::size_t limit,
                                                       std::int64_t min_ts_ms) {
  std::vector<StoredEvent> events;
  if (limit == 0) return events;
  sqlite3_stmt* stmt = select_recent_.get();
  Use use(stmt);
  bind_text(stmt, 1, agent_id);
  sqlite3_bind_int64(stmt, 2, min_ts_ms);
  sqlite3_bind_int64(stmt, 3, to_sql_int(limit));
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    StoredEvent event;
    event.agent_id = std::string(agent_id);
    event.seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
    event.type = column_text(stmt, 1);
    event.ts_ms = sqlite3_column_int64(stmt, 2);
    event.data = column_text(stmt, 3);
    event.idempotency_key = column_text(stmt, 4);
    events.push_back(std::move(event));
  }
  if (rc != SQLITE_DONE) fail(rc, "load recent events");
  std::reverse(events.begin(), events.end());  // read newest first to apply the limit; returned oldest first
  return events;
}

void SqliteEventStore::append(const std::vector<StoredChannel>& new_channels,
                              const std::vector<const Event*>& events,
                              const std::vector<const StateRecord*>& records) {
  if (new_channels.empty() && events.empty() && records.empty()) return;

  struct Range {
    std::uint64_t min_seq = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t max_seq = 0;
    std::uint64_t count = 0;
  };
  std::unordered_map<std::string_view, Range> ranges;
  for (const Event* event : events) {
    Range& range = ranges[event->agent_id];
    range.min_seq = std::min(range.min_seq, event->seq);
    range.max_seq = std::max(range.max_seq, event->seq);
    ++range.count;
  }

  Transaction tx(*this);
  for (const StoredChannel& channel : new_channels) {
    sqlite3_stmt* insert = insert_channel_.get();
    Use use(insert);
    bind_text(insert, 1, channel.agent_id);
    bind_text(insert, 2, channel.epoch);
    const int rc = sqlite3_step(insert);
    if (rc != SQLITE_DONE) fail(rc, "register channel " + channel.agent_id);
    if (sqlite3_changes(db_.get()) == 0) {
      sqlite3_stmt* select = channel_epoch_.get();
      Use use_select(select);
      bind_text(select, 1, channel.agent_id);
      const int step = sqlite3_step(select);
      if (step != SQLITE_ROW) fail(step, "register channel " + channel.agent_id);
      if (column_text(select, 0) != channel.epoch) {
        throw StoreError("sqlite store " + path_ + ": register channel " + channel.agent_id +
                             ": already stored with another epoch",
                         false);
      }
    }
  }

  for (const Event* event : events) {
    sqlite3_stmt* insert = insert_event_.get();
    Use use(insert);
    bind_text(insert, 1, event->agent_id);
    sqlite3_bind_int64(insert, 2, to_sql_int(event->seq));
    bind_text(insert, 3, event->type);
    sqlite3_bind_int64(insert, 4, event->ts_ms);
    bind_text(insert, 5, event->data);
    if (!event->idempotency_key.empty()) bind_text(insert, 6, event->idempotency_key);
    const int rc = sqlite3_step(insert);
    if (rc != SQLITE_DONE) {
      fail(rc, "store event " + event->agent_id + "#" + std::to_string(event->seq));
    }
  }

  for (const auto& [agent_id, range] : ranges) {
    sqlite3_stmt* update = raise_last_seq_.get();
    Use use(update);
    bind_text(update, 1, agent_id);
    sqlite3_bind_int64(update, 2, to_sql_int(range.max_seq));
    sqlite3_bind_int64(update, 3, to_sql_int(range.min_seq));
    const int rc = sqlite3_step(update);
    if (rc != SQLITE_DONE) fail(rc, "raise last_seq of " + std::string(agent_id));
    if (sqlite3_changes(db_.get()) == 0) {
      throw StoreError("sqlite store " + path_ + ": store events of " + std::string(agent_id) +
                           ": channel not registered, or seq " + std::to_string(range.min_seq) +
                           " not above its last_seq",
                       false);
    }
  }
  for (const StateRecord* record : records) {
    sqlite3_stmt* stmt = record->json.empty() ? delete_state_.get() : upsert_state_.get();
    Use use(stmt);
    bind_text(stmt, 1, record->agent_id);
    bind_text(stmt, 2, record->kind);
    bind_text(stmt, 3, record->id);
    if (!record->json.empty()) bind_text(stmt, 4, record->json);
    const int rc = sqlite3_step(stmt);
    if (rc != SQLITE_DONE) fail(rc, "store state " + record->kind + "/" + record->id);
  }
  tx.commit();

  // Only after the commit: a failed batch must not change what prune() believes is stored.
  for (const auto& [agent_id, range] : ranges) {
    if (auto it = counts_.find(agent_id); it != counts_.end()) {
      it->second += range.count;
    } else {
      counts_.emplace(std::string(agent_id), range.count);
    }
  }
  events_.fetch_add(events.size(), std::memory_order_relaxed);
}

void SqliteEventStore::prune(std::size_t keep_per_channel, std::int64_t min_ts_ms) {
  if (counts_.empty()) return;
  const std::uint64_t keep = keep_per_channel;
  CountMap removed;

  Transaction tx(*this);
  {
    // The ts_ms index makes this cost what it deletes, however many channels there are.
    sqlite3_stmt* del = delete_older_.get();
    Use use(del);
    sqlite3_bind_int64(del, 1, min_ts_ms);
    int rc;
    while ((rc = sqlite3_step(del)) == SQLITE_ROW) {
      const auto* id = reinterpret_cast<const char*>(sqlite3_column_text(del, 0));
      const std::string_view agent_id(id != nullptr ? id : "",
                                      static_cast<std::size_t>(sqlite3_column_bytes(del, 0)));
      if (auto it = removed.find(agent_id); it != removed.end()) {
        ++it->second;
      } else {
        removed.emplace(std::string(agent_id), 1);
      }
    }
    if (rc != SQLITE_DONE) fail(rc, "prune by age");
  }

  const bool any_aged = !removed.empty();
  for (const auto& [agent_id, count] : counts_) {
    std::uint64_t left = count;
    if (any_aged) {
      if (auto it = removed.find(agent_id); it != removed.end()) left -= std::min(left, it->second);
    }
    if (left <= keep) continue;
    sqlite3_stmt* del = delete_oldest_.get();
    Use use(del);
    bind_text(del, 1, agent_id);
    sqlite3_bind_int64(del, 2, to_sql_int(left - keep - 1));
    const int rc = sqlite3_step(del);
    if (rc != SQLITE_DONE) fail(rc, "prune " + agent_id);
    removed[agent_id] += static_cast<std::uint64_t>(sqlite3_changes64(db_.get()));
  }
  if (removed.empty()) return;  // the transaction rolls back: nothing was written
  tx.commit();

  std::uint64_t total_removed = 0;
  for (const auto& [agent_id, n] : removed) {
    auto it = counts_.find(agent_id);
    if (it == counts_.end()) continue;
    const std::uint64_t gone = std::min(n, it->second);
    total_removed += gone;
    it->second -= gone;
    if (it->second == 0) counts_.erase(it);  // keeps the per-prune walk to channels that hold events
  }
  events_.fetch_sub(total_removed, std::memory_order_relaxed);
}

StoreStats SqliteEventStore::stats() {
  // Safe from any thread: no connection access, only the files' sizes and an atomic.
  StoreStats stats;
  stats.bytes = file_size_or_zero(path_) + file_size_or_zero(path_ + "-wal");
  stats.events = events_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace aw
