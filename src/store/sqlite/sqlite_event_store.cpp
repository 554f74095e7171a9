// The SQLite event log: schema, cached statements, group-commit appends and retention.
#include "store/sqlite/sqlite_event_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <utility>

#include "core/log.hpp"
#include "core/random_id.hpp"

namespace aw::store {
namespace {

constexpr int kSchemaVersion = 3;
constexpr int kBusyTimeoutMs = 5000;
// A WAL frame is a page plus this header; the file starts with a 32-byte header of its own.
constexpr std::uint64_t kWalFrameHeader = 24;
constexpr std::uint64_t kWalHeader = 32;

// Events live in a rowid table, appended in commit order. A group commit spans many channels, so whatever
// the database keeps per channel costs a random page write per channel per commit; with thousands of
// channels that is about one 4 KiB WAL frame per event. Hence: no WITHOUT ROWID primary key clustering
// rows by channel (measured at 10-2000 channels, appends twice as fast without), no index on
// (agent_id, seq) (a random leaf per channel), and no per-commit update of channels.last_seq (a random
// page of the channels table). A channel's last seq is max(channels.last_seq, its highest stored seq);
// prune() raises channels.last_seq before it deletes, so the highest seq outlives its events. Which
// events a channel has and its last seq the writer keeps in memory (ChannelLog), built by one scan at
// open: append() checks seqs against it, prune() deletes by rowid from it. Nor is there an index on ts_ms
// (schema 3): it took a B-tree insert per event and a page per commit, about a sixth of a publish's
// server time over 10k channels; which rowids hold which commit times the writer keeps in memory
// (CommitTimes), and age pruning deletes by rowid range.
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
CREATE TABLE IF NOT EXISTS state(
  agent_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  id TEXT NOT NULL,
  json TEXT NOT NULL,
  PRIMARY KEY(agent_id, kind, id)
) WITHOUT ROWID;
)sql";

// Version 1 had the unique index events_by_channel and raised channels.last_seq in every commit: its rows
// are valid version-2 rows as they are (an exact last_seq is also a lower bound).
constexpr const char* kMigrateFrom1 = R"sql(
DROP INDEX IF EXISTS events_by_channel;
UPDATE meta SET value = '2' WHERE key = 'schema_version';
)sql";
// Version 2 had the index events_by_ts; its rows are version-3 rows as they are.
constexpr const char* kMigrateFrom2 = R"sql(
DROP INDEX IF EXISTS events_by_ts;
UPDATE meta SET value = '3' WHERE key = 'schema_version';
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

// Valid until the statement steps again or is reset.
std::string_view column_view(sqlite3_stmt* stmt, int index) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, index));
  if (text == nullptr) return {};
  return std::string_view(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, index)));
}

std::string column_text(sqlite3_stmt* stmt, int index) {
  return std::string(column_view(stmt, index));
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

SqliteEventStore::FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

void SqliteEventStore::FileLock::acquire(const std::string& db_path) {
  // The database file itself, not a lock file beside it: deleting a lock file lets a second process lock
  // a new file of the same name, while deleting the database is not tidying up. flock, not SQLite's
  // locking_mode=EXCLUSIVE, which would shut out online backups and change how the WAL index is kept.
  // flock and SQLite's fcntl locks do not interact; the lock goes with the open file, so even kill -9
  // releases it. (Closing this descriptor also drops this process's fcntl locks on the file, so it is
  // closed only after the connection, or when the store is refused before it opened one.)
  fd_ = ::open(db_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int err = errno;
    throw StoreError("sqlite store " + db_path + ": cannot open database: " + std::strerror(err),
                     err == ENOSPC || err == EDQUOT);
  }
  int rc;
  while ((rc = ::flock(fd_, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK) {
      throw StoreError("sqlite store " + db_path +
                           ": the database is in use by another agentwire process (it holds the file's lock)",
                       false);
    }
    throw StoreError("sqlite store " + db_path + ": cannot lock the database: " + std::strerror(err), false);
  }
}

SqliteEventStore::SqliteEventStore(std::string path, FsyncMode mode, std::uint64_t max_bytes,
                                   std::size_t keep_per_channel)
    : path_(std::move(path)), keep_per_channel_(keep_per_channel) {
  // Before SQLite reads or writes anything: a second process stops here.
  lock_.acquire(path_);
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
  // Replaces SQLite's auto-checkpoint, which would run inside COMMIT (see checkpoint_if_due).
  sqlite3_wal_hook(db_.get(), &SqliteEventStore::on_wal_commit, this);

  create_schema();
  {
    auto page_size = prepare("PRAGMA page_size");
    if (sqlite3_step(page_size.get()) != SQLITE_ROW) fail(sqlite3_errcode(db_.get()), "read page_size");
    page_size_ =
        std::max<std::uint64_t>(512, static_cast<std::uint64_t>(sqlite3_column_int64(page_size.get(), 0)));
  }
  if (max_bytes > 0) {
    checkpoint_frames_ =
        std::clamp<std::uint64_t>(max_bytes / 8 / page_size_, kMinCheckpointFrames, kCheckpointFrames);
  }
  // Without a limit a restarted WAL keeps its largest size ever; with it, one big commit is given back.
  run(prepare("PRAGMA journal_size_limit=" + std::to_string(wal_limit_bytes())).get(),
      "set journal_size_limit");
  if (max_bytes > 0) set_quota(max_bytes);
  prepare_statements();
  prepare_state_statements();
  load_index();
  rebuild_missing_channels();
  // A WAL left long by kill -9 after a large commit, or by an older version that never checkpointed, is
  // folded back now and the file emptied, rather than at the first commit or never on an idle server.
  sqlite3_wal_checkpoint_v2(db_.get(), "main", SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  wal_frames_ = 0;
  open_cold_reader();
}

// Closing the connection checkpoints what is left in the WAL (at most about checkpoint_frames() pages,
// so a stop is quick) and deletes the WAL.
SqliteEventStore::~SqliteEventStore() = default;

// The database's size in pages as this connection sees it (the WAL's pages included); on an error, as
// if it were large, so that the checkpoint waits for the cap.
std::uint64_t SqliteEventStore::database_pages() noexcept {
  sqlite3_stmt* stmt = page_count_.get();
  Use use(stmt);
  if (sqlite3_step(stmt) != SQLITE_ROW) return std::numeric_limits<std::uint64_t>::max();
  return static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
}

std::uint64_t SqliteEventStore::wal_limit_bytes() const noexcept {
  return kWalHeader + checkpoint_frames_ * (page_size_ + kWalFrameHeader);
}

std::size_t SqliteEventStore::trim_threshold(std::size_t keep_per_channel) noexcept {
  if (keep_per_channel == kKeepAll) return kKeepAll;
  return keep_per_channel + std::max<std::size_t>(keep_per_channel / 4, 64);
}

int SqliteEventStore::on_wal_commit(void* self, sqlite3*, const char*, int frames) noexcept {
  static_cast<SqliteEventStore*>(self)->wal_frames_ = frames;
  return SQLITE_OK;
}

// On the writer's connection between commits, so no commit lands while it runs: a passive checkpoint then
// copies the whole WAL back and the next commit starts the WAL over from its beginning. A checkpointer
// on another connection never gets there under a steady stream of commits (each of its passes ends
// with newer frames behind it), and the WAL grows without end. The cost is one copy of the pages
// changed since the last checkpoint and, unless --fsync off, an fsync, once per quarter of the database
// (between 64 and checkpoint_frames() pages) written: the next group commit waits for it, and carries
// the publishes that queued meanwhile.
void SqliteEventStore::checkpoint_if_due() noexcept {
  const auto frames = static_cast<std::uint64_t>(wal_frames_);
  if (frames < kMinCheckpointFrames) return;
  if (frames < checkpoint_frames_ && frames < database_pages() / 4) return;
  int log_frames = 0;
  int copied_frames = 0;
  const int rc =
      sqlite3_wal_checkpoint_v2(db_.get(), "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied_frames);
  if (rc != SQLITE_OK) {
    // A full disk, say: the WAL keeps its pages and the next commit tries again; logged once per spell.
    if (!checkpoint_failing_) log::warn("store_checkpoint_failed", {{"error", sqlite3_errmsg(db_.get())}});
    checkpoint_failing_ = true;
    return;
  }
  checkpoint_failing_ = false;
  // Pages left behind: another process (an online backup) is reading; the next commit tries again.
  if (copied_frames == log_frames) wal_frames_ = 0;
}

void SqliteEventStore::create_schema() {
  // BEGIN IMMEDIATE so two processes starting on a new file do not both try to create it.
  run(prepare("BEGIN IMMEDIATE").get(), "create schema");
  const auto exec = [this](const char* sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &message);
    if (rc == SQLITE_OK) return;
    const std::string detail = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw StoreError("sqlite store " + path_ + ": create schema: " + detail, is_full(rc));
  };
  exec(kSchema);

  std::string version;
  {
    auto select = prepare("SELECT value FROM meta WHERE key = 'schema_version'");
    const int step = sqlite3_step(select.get());
    if (step == SQLITE_ROW) {
      version = column_text(select.get(), 0);
    } else if (step != SQLITE_DONE) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      fail(step, "create schema");
    }
  }  // finalized here: DROP INDEX fails while a statement is reading
  const std::string current = std::to_string(kSchemaVersion);
  if (version.empty()) {
    exec(("INSERT INTO meta(key, value) VALUES('schema_version', '" + current + "')").c_str());
  } else if (version == "1") {
    exec(kMigrateFrom1);
    exec(kMigrateFrom2);
  } else if (version == "2") {
    exec(kMigrateFrom2);
  } else if (version != current) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    throw StoreError("sqlite store " + path_ + ": schema version " + version +
                         " is not supported (this build knows versions up to " + current + ")",
                     false);
  }
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
  raise_last_seq_ = prepare("UPDATE channels SET last_seq = max(last_seq, ?2) WHERE agent_id = ?1");
  rebuild_channel_ = prepare("INSERT INTO channels(agent_id, epoch, last_seq) VALUES(?1, ?2, ?3)");
  insert_event_ = prepare(
      "INSERT INTO events(agent_id, seq, type, ts_ms, data, idempotency_key) VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  select_channels_ = prepare("SELECT agent_id, epoch, last_seq FROM channels ORDER BY agent_id");
  // One walk of the table in rowid order, no sort.
  select_events_ = prepare(
      "SELECT agent_id, seq, type, ts_ms, data, idempotency_key FROM events WHERE ts_ms >= ?1 ORDER BY id");
  select_event_by_id_ = prepare("SELECT seq, type, ts_ms, data, idempotency_key FROM events WHERE id = ?1");
  delete_older_ =
      prepare("DELETE FROM events WHERE id BETWEEN ?1 AND ?2 AND ts_ms < ?3 RETURNING id, agent_id");
  min_id_ = prepare("SELECT min(id) FROM events");
  // A run of consecutive rowids of one channel: no other channel's row lies in between.
  delete_ids_ = prepare("DELETE FROM events WHERE id BETWEEN ?1 AND ?2");
  page_count_ = prepare("PRAGMA page_count");
}

void SqliteEventStore::prepare_state_statements() {
  upsert_state_ = prepare(
      "INSERT INTO state(agent_id, kind, id, json) VALUES(?1, ?2, ?3, ?4)"
      " ON CONFLICT(agent_id, kind, id) DO UPDATE SET json = excluded.json");
  delete_state_ = prepare("DELETE FROM state WHERE agent_id = ?1 AND kind = ?2 AND id = ?3");
  // substr, not LIKE: '~' is no LIKE wildcard, but a kind holding '%' or '_' would be.
  select_state_ = prepare(
      "SELECT kind, id, json FROM state WHERE agent_id = ?1 AND substr(kind, 1, 1) <> '~' ORDER BY kind, id");
  static_assert(kColdKindPrefix == '~', "the query above names the prefix");
}

void SqliteEventStore::open_cold_reader() {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path_.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  cold_db_.reset(raw);
  if (rc != SQLITE_OK) {
    throw StoreError("sqlite store " + path_ + ": open the cold record reader: " + sqlite3_errstr(rc), false);
  }
  sqlite3_busy_timeout(cold_db_.get(), kBusyTimeoutMs);
  sqlite3_stmt* stmt = nullptr;
  const int prepared = sqlite3_prepare_v3(
      cold_db_.get(), "SELECT json FROM state WHERE agent_id = ?1 AND kind = ?2 AND id = ?3", -1,
      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  select_cold_.reset(stmt);
  if (prepared != SQLITE_OK) {
    throw StoreError(
        "sqlite store " + path_ + ": prepare the cold record reader: " + sqlite3_errmsg(cold_db_.get()),
        false);
  }
}

std::optional<std::string> SqliteEventStore::load_cold_record(std::string_view agent_id,
                                                              std::string_view kind, std::string_view id) {
  std::lock_guard lock(cold_mutex_);
  sqlite3_stmt* stmt = select_cold_.get();
  Use use(stmt);
  bind_text(stmt, 1, agent_id);
  bind_text(stmt, 2, kind);
  bind_text(stmt, 3, id);
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) return column_text(stmt, 0);
  if (rc != SQLITE_DONE) {
    throw StoreError("sqlite store " + path_ + ": load " + std::string(kind) + "/" + std::string(id) + ": " +
                         sqlite3_errmsg(cold_db_.get()),
                     false);
  }
  return std::nullopt;
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

void SqliteEventStore::load_index() {
  {
    auto select = prepare("SELECT agent_id, last_seq FROM channels");
    int rc;
    while ((rc = sqlite3_step(select.get())) == SQLITE_ROW) {
      ChannelLog& log = channels_[column_text(select.get(), 0)];
      log.registered = true;
      log.last_seq = log.stored_last_seq = static_cast<std::uint64_t>(sqlite3_column_int64(select.get(), 1));
    }
    if (rc != SQLITE_DONE) fail(rc, "load channels");
  }

  // In rowid order, so each channel's rowids come out ascending. Reads no event data: agent_id, seq and
  // ts_ms come before it in the row.
  auto select = prepare("SELECT id, agent_id, seq, ts_ms FROM events ORDER BY id");
  ChannelLog* log = nullptr;
  std::string_view log_id;  // the map's key of `log`
  std::uint64_t total = 0;
  int rc;
  while ((rc = sqlite3_step(select.get())) == SQLITE_ROW) {
    const std::string_view agent_id = column_view(select.get(), 1);
    if (log == nullptr || agent_id != log_id) {
      auto it = channels_.find(agent_id);
      // Events without a channels row cannot be loaded (no epoch), but prune() must still see them.
      if (it == channels_.end()) it = channels_.emplace(std::string(agent_id), ChannelLog{}).first;
      log = &it->second;
      log_id = it->first;
    }
    const std::int64_t id = sqlite3_column_int64(select.get(), 0);
    log->ids.push_back(id);
    commit_times_.add(id, sqlite3_column_int64(select.get(), 3));
    const auto seq = static_cast<std::uint64_t>(sqlite3_column_int64(select.get(), 2));
    log->last_seq = std::max(log->last_seq, seq);
    ++total;
  }
  if (rc != SQLITE_DONE) fail(rc, "load event index");
  events_.store(total, std::memory_order_relaxed);
}

// Events whose channel has no row (deleted by hand, or a tool that wrote half of a change) would be
// skipped at start-up and every later append to the channel refused; numbering must also continue
// above them. The old epoch is gone with the row, so clients that resume get a snapshot.
void SqliteEventStore::rebuild_missing_channels() {
  std::vector<std::pair<ChannelEntry*, std::string>> rebuilt;  // and the new epoch
  for (ChannelEntry& entry : channels_) {
    if (!entry.second.registered && entry.second.stored() > 0) rebuilt.emplace_back(&entry, random_hex_id(8));
  }
  if (rebuilt.empty()) return;
  try {
    Transaction tx(*this);
    for (const auto& [entry, epoch] : rebuilt) {
      sqlite3_stmt* insert = rebuild_channel_.get();
      Use use(insert);
      bind_text(insert, 1, entry->first);
      bind_text(insert, 2, epoch);
      sqlite3_bind_int64(insert, 3, to_sql_int(entry->second.last_seq));
      const int rc = sqlite3_step(insert);
      if (rc != SQLITE_DONE) fail(rc, "rebuild channel " + entry->first);
    }
    tx.commit();
  } catch (const StoreError& e) {
    // The server still starts; those channels stay as they were (skipped, their appends refused).
    log::error("store_channel_rebuild_failed", {{"error", e.what()}});
    return;
  }
  for (const auto& [entry, epoch] : rebuilt) {
    ChannelLog& log = entry->second;
    log.registered = true;
    log.stored_last_seq = log.last_seq;
    const std::string last_seq = std::to_string(log.last_seq);
    const std::string events = std::to_string(log.stored());
    log::warn("store_channel_rebuilt", {{"agent_id", entry->first},
                                        {"last_seq", last_seq},
                                        {"events", events},
                                        {"epoch", epoch},
                                        {"reason", "channels row missing for stored events"}});
  }
  checkpoint_if_due();
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
    StoredChannel channel{column_text(stmt, 0), column_text(stmt, 1),
                          static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 2))};
    // The row's last_seq is only a lower bound; the map knows the stored events too.
    if (auto it = channels_.find(channel.agent_id); it != channels_.end()) {
      channel.last_seq = std::max(channel.last_seq, it->second.last_seq);
    }
    channels.push_back(std::move(channel));
  }
  if (rc != SQLITE_DONE) fail(rc, "load channels");
  return channels;
}

void SqliteEventStore::load_events(std::int64_t min_ts_ms, const std::function<void(StoredEvent&&)>& visit) {
  sqlite3_stmt* stmt = select_events_.get();
  Use use(stmt);
  sqlite3_bind_int64(stmt, 1, min_ts_ms);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    StoredEvent event;
    event.agent_id = column_text(stmt, 0);
    event.seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 1));
    event.type = column_text(stmt, 2);
    event.ts_ms = sqlite3_column_int64(stmt, 3);
    event.data = column_text(stmt, 4);
    event.idempotency_key = column_text(stmt, 5);
    visit(std::move(event));
  }
  if (rc != SQLITE_DONE) fail(rc, "load events");
}

std::optional<StoredChannel> SqliteEventStore::find_channel(std::string_view agent_id) {
  auto it = channels_.find(agent_id);
  if (it == channels_.end() || !it->second.registered) return std::nullopt;
  sqlite3_stmt* select = channel_epoch_.get();
  Use use(select);
  bind_text(select, 1, agent_id);
  const int rc = sqlite3_step(select);
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) fail(rc, "find channel " + std::string(agent_id));
  return StoredChannel{it->first, column_text(select, 0), it->second.last_seq};
}

void SqliteEventStore::load_channel_events(std::string_view agent_id, std::uint64_t after_seq,
                                           const std::function<bool(StoredEvent&&)>& visit) {
  auto it = channels_.find(agent_id);
  if (it == channels_.end()) return;
  const ChannelLog& log = it->second;
  sqlite3_stmt* select = select_event_by_id_.get();
  // Reads the row `id`; false when it is gone (it cannot be while the writer knows it, but never trust).
  auto read = [&](std::int64_t id, StoredEvent& out) {
    Use use(select);
    sqlite3_bind_int64(select, 1, id);
    const int rc = sqlite3_step(select);
    if (rc == SQLITE_DONE) return false;
    if (rc != SQLITE_ROW) fail(rc, "load events of " + std::string(agent_id));
    out.seq = static_cast<std::uint64_t>(sqlite3_column_int64(select, 0));
    out.type = column_text(select, 1);
    out.ts_ms = sqlite3_column_int64(select, 2);
    out.data = column_text(select, 3);
    out.idempotency_key = column_text(select, 4);
    return true;
  };
  // The channel's rowids ascend with its seqs: the first above after_seq is found by bisection.
  std::size_t lo = log.head;
  std::size_t hi = log.ids.size();
  StoredEvent probe;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (read(log.ids[mid], probe) && probe.seq <= after_seq) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  for (std::size_t i = lo; i < log.ids.size(); ++i) {
    StoredEvent event;
    if (!read(log.ids[i], event)) continue;
    event.agent_id = std::string(agent_id);
    if (!visit(std::move(event))) return;
  }
}

void SqliteEventStore::touch(ChannelLog& log) noexcept {
  if (log.batch_mark == batch_) return;
  log.batch_mark = batch_;
  log.batch_last_seq = log.last_seq;
  log.batch_registers = false;
  log.batch_events = 0;
  log.batch_trim = 0;
}

void SqliteEventStore::append(const std::vector<StoredChannel>& new_channels,
                              const std::vector<const Event*>& events,
                              const std::vector<const StateRecord*>& records) {
  if (new_channels.empty() && events.empty() && records.empty()) return;

  ++batch_;
  // Channels new to the map get an entry now (unregistered until the commit); dropped if the batch fails.
  std::vector<std::string_view> created;
  try {
    for (const StoredChannel& channel : new_channels) {
      auto it = channels_.find(channel.agent_id);
      if (it == channels_.end()) {
        it = channels_.emplace(channel.agent_id, ChannelLog{}).first;
        created.push_back(it->first);
      }
      touch(it->second);
      it->second.batch_registers = true;
    }
    // What the database no longer checks (see kSchema): every event's channel is registered, and each
    // channel's seqs rise above its last seq, so numbering never goes back, even past pruned events.
    batch_logs_.clear();
    batch_channels_.clear();
    for (const Event* event : events) {
      auto it = channels_.find(event->agent_id());
      ChannelLog* log = it != channels_.end() ? &it->second : nullptr;
      if (log != nullptr) touch(*log);
      if (log == nullptr || !(log->registered || log->batch_registers)) {
        throw StoreError("sqlite store " + path_ + ": store event " + std::string(event->agent_id()) + "#" +
                             std::to_string(event->seq) + ": channel not registered",
                         false);
      }
      if (event->seq <= log->batch_last_seq) {
        throw StoreError("sqlite store " + path_ + ": store event " + std::string(event->agent_id()) + "#" +
                             std::to_string(event->seq) + ": seq not above the channel's last seq " +
                             std::to_string(log->batch_last_seq),
                         false);
      }
      log->batch_last_seq = event->seq;
      batch_logs_.push_back(log);
      if (log->batch_events++ == 0) batch_channels_.push_back(&*it);
    }

    Transaction tx(*this);
    // Trims first, so their pages are free for the inserts (which matters at the quota). Only events
    // stored before the batch go, oldest first: the newest seq always stays, so no last_seq to raise.
    const std::size_t threshold = trim_threshold(keep_per_channel_);
    for (ChannelEntry* entry : batch_channels_) {
      ChannelLog& log = entry->second;
      const std::size_t total = log.stored() + log.batch_events;
      if (total < threshold) continue;
      log.batch_trim = std::min(log.stored(), total - keep_per_channel_);
      trim_oldest(entry->first, log, log.batch_trim);
    }

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
        if (column_view(select, 0) != channel.epoch) {
          throw StoreError("sqlite store " + path_ + ": register channel " + channel.agent_id +
                               ": already stored with another epoch",
                           false);
        }
      }
    }

    batch_rowids_.clear();
    for (const Event* event : events) {
      sqlite3_stmt* insert = insert_event_.get();
      Use use(insert);
      bind_text(insert, 1, event->agent_id());
      sqlite3_bind_int64(insert, 2, to_sql_int(event->seq));
      bind_text(insert, 3, event->type());
      sqlite3_bind_int64(insert, 4, event->ts_ms);
      bind_text(insert, 5, event->data());
      if (!event->idempotency_key.empty()) bind_text(insert, 6, event->idempotency_key);
      const int rc = sqlite3_step(insert);
      if (rc != SQLITE_DONE) {
        fail(rc, "store event " + std::string(event->agent_id()) + "#" + std::to_string(event->seq));
      }
      batch_rowids_.push_back(sqlite3_last_insert_rowid(db_.get()));
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
  } catch (...) {
    for (std::string_view agent_id : created) channels_.erase(channels_.find(agent_id));
    throw;
  }

  // Only after the commit: a failed batch must not change what append() and prune() believe is stored.
  for (const StoredChannel& channel : new_channels) {
    channels_.find(channel.agent_id)->second.registered = true;
  }
  std::size_t trimmed = 0;
  for (ChannelEntry* entry : batch_channels_) {
    ChannelLog& log = entry->second;
    if (log.batch_trim == 0) continue;
    log.head += log.batch_trim;
    trimmed += log.batch_trim;
    compact(log);
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    ChannelLog& log = *batch_logs_[i];
    log.ids.push_back(batch_rowids_[i]);
    log.last_seq = events[i]->seq;  // rising, checked above
    commit_times_.add(batch_rowids_[i], events[i]->ts_ms);
  }
  events_.fetch_add(events.size(), std::memory_order_relaxed);
  events_.fetch_sub(std::min<std::uint64_t>(trimmed, events_.load(std::memory_order_relaxed)),
                    std::memory_order_relaxed);
  checkpoint_if_due();
}

// Deletes the `count` oldest stored events of a channel, a run of consecutive rowids at a time.
void SqliteEventStore::trim_oldest(const std::string& agent_id, const ChannelLog& log, std::size_t count) {
  const std::size_t end = log.head + count;
  for (std::size_t i = log.head; i < end;) {
    std::size_t last = i + 1;
    while (last < end && log.ids[last] == log.ids[last - 1] + 1) ++last;
    sqlite3_stmt* del = delete_ids_.get();
    Use use(del);
    sqlite3_bind_int64(del, 1, log.ids[i]);
    sqlite3_bind_int64(del, 2, log.ids[last - 1]);
    const int rc = sqlite3_step(del);
    if (rc != SQLITE_DONE) fail(rc, "trim " + agent_id);
    i = last;
  }
}

std::size_t SqliteEventStore::drop_ids(ChannelLog& log, const std::vector<std::int64_t>& gone) {
  const std::size_t before = log.stored();
  const std::size_t k = gone.size();
  if (k == 0 || before == 0) return 0;
  if (k <= before && log.ids[log.head] == gone.front() && log.ids[log.head + k - 1] == gone.back()) {
    log.head += k;  // the usual case: the oldest (both lists ascending and without duplicates)
  } else {
    // Age need not take the oldest rowids (ts_ms comes from a clock that may step back): filter in place.
    std::size_t kept = log.head;
    std::size_t g = 0;
    for (std::size_t i = log.head; i < log.ids.size(); ++i) {
      const std::int64_t id = log.ids[i];
      while (g < k && gone[g] < id) ++g;
      if (g < k && gone[g] == id) continue;
      log.ids[kept++] = id;
    }
    log.ids.resize(kept);
  }
  compact(log);
  return before - log.stored();
}

void SqliteEventStore::compact(ChannelLog& log) {
  if (log.head == log.ids.size()) {
    std::vector<std::int64_t>().swap(log.ids);  // a channel without events holds no memory
    log.head = 0;
  } else if (log.head * 2 >= log.ids.size()) {
    // Erasing only once the dead front is half of the vector keeps it amortized O(1) per rowid.
    log.ids.erase(log.ids.begin(), log.ids.begin() + static_cast<std::ptrdiff_t>(log.head));
    log.head = 0;
    if (log.ids.capacity() > 4 * log.ids.size() + 64) log.ids.shrink_to_fit();  // after a burst
  }
}

void SqliteEventStore::prune(std::size_t keep_per_channel, std::int64_t min_ts_ms) {
  if (events_.load(std::memory_order_relaxed) == 0) return;
  // The rowids this prune deletes, per channel (ascending once sorted).
  std::unordered_map<ChannelEntry*, std::vector<std::int64_t>> doomed;

  Transaction tx(*this);
  // By age: only the rowid ranges committed before the cutoff are read, however many events and
  // channels there are.
  for (const CommitTimes::Range& range : commit_times_.older_than(min_ts_ms)) {
    sqlite3_stmt* del = delete_older_.get();
    Use use(del);
    sqlite3_bind_int64(del, 1, range.first_id);
    sqlite3_bind_int64(del, 2, range.last_id);
    sqlite3_bind_int64(del, 3, min_ts_ms);
    int rc;
    while ((rc = sqlite3_step(del)) == SQLITE_ROW) {
      if (auto it = channels_.find(column_view(del, 1)); it != channels_.end()) {
        doomed[&*it].push_back(sqlite3_column_int64(del, 0));
      }
    }
    if (rc != SQLITE_DONE) fail(rc, "prune by age");
  }
  // drop_ids() needs each channel's ids ascending. They come so (ranges in rowid order, each deleting in
  // rowid order); the sort, cheap on sorted input, keeps that true whatever order SQLite returns them in.
  for (auto& [entry, ids] : doomed) std::sort(ids.begin(), ids.end());

  // By count: the oldest rowids of each channel over the limit, skipping those age took already. A
  // channel's rowids in a row are consecutive when it published several events in one commit: one
  // range delete each.
  std::vector<std::int64_t> oldest;
  for (ChannelEntry& entry : channels_) {
    ChannelLog& log = entry.second;
    std::size_t left = log.stored();
    if (left <= keep_per_channel) continue;
    const std::vector<std::int64_t>* aged = nullptr;
    if (!doomed.empty()) {
      if (auto it = doomed.find(&entry); it != doomed.end()) {
        aged = &it->second;
        left -= std::min(left, aged->size());
        if (left <= keep_per_channel) continue;
      }
    }
    const std::size_t excess = left - keep_per_channel;
    oldest.clear();
    std::size_t a = 0;
    for (std::size_t i = log.head; i < log.ids.size() && oldest.size() < excess; ++i) {
      const std::int64_t id = log.ids[i];
      if (aged != nullptr) {
        while (a < aged->size() && (*aged)[a] < id) ++a;
        if (a < aged->size() && (*aged)[a] == id) continue;
      }
      oldest.push_back(id);
    }
    for (std::size_t i = 0; i < oldest.size();) {
      std::size_t end = i + 1;
      while (end < oldest.size() && oldest[end] == oldest[end - 1] + 1) ++end;
      sqlite3_stmt* del = delete_ids_.get();
      Use use(del);
      sqlite3_bind_int64(del, 1, oldest[i]);
      sqlite3_bind_int64(del, 2, oldest[end - 1]);
      const int rc = sqlite3_step(del);
      if (rc != SQLITE_DONE) fail(rc, "prune " + entry.first);
      i = end;
    }
    std::vector<std::int64_t>& gone = doomed[&entry];  // `aged` stays valid: map nodes do not move
    if (gone.empty()) {
      gone = oldest;
    } else {
      std::vector<std::int64_t> merged(gone.size() + oldest.size());
      std::merge(gone.begin(), gone.end(), oldest.begin(), oldest.end(), merged.begin());
      gone.swap(merged);
    }
  }
  if (doomed.empty()) {
    commit_times_.cut(min_ts_ms);  // ranges may still name rows that count pruning deleted before
    return;                        // the transaction rolls back: nothing was written
  }

  // Appends do not write channels.last_seq (see kSchema): it must hold the last seq before the events
  // that carry it are gone, in the same transaction.
  for (auto& [entry, gone] : doomed) {
    const ChannelLog& log = entry->second;
    if (log.stored_last_seq >= log.last_seq) continue;
    sqlite3_stmt* update = raise_last_seq_.get();
    Use use(update);
    bind_text(update, 1, entry->first);
    sqlite3_bind_int64(update, 2, to_sql_int(log.last_seq));
    const int rc = sqlite3_step(update);
    if (rc != SQLITE_DONE) fail(rc, "raise last_seq of " + entry->first);
  }
  std::optional<std::int64_t> min_id;
  {
    sqlite3_stmt* select = min_id_.get();
    Use use(select);
    const int rc = sqlite3_step(select);
    if (rc != SQLITE_ROW) fail(rc, "prune: read the oldest rowid");
    if (sqlite3_column_type(select, 0) != SQLITE_NULL) min_id = sqlite3_column_int64(select, 0);
  }
  tx.commit();
  checkpoint_if_due();

  commit_times_.cut(min_ts_ms);
  if (min_id) {
    commit_times_.forget_below(*min_id);
  } else {
    commit_times_.clear();
  }

  std::uint64_t removed = 0;
  for (auto& [entry, gone] : doomed) {
    ChannelLog& log = entry->second;
    log.stored_last_seq = std::max(log.stored_last_seq, log.last_seq);
    removed += drop_ids(log, gone);
  }
  events_.fetch_sub(std::min<std::uint64_t>(removed, events_.load(std::memory_order_relaxed)),
                    std::memory_order_relaxed);
}

StoreStats SqliteEventStore::stats() {
  // Safe from any thread: no connection access, only the files' sizes and an atomic.
  StoreStats stats;
  stats.bytes = file_size_or_zero(path_) + file_size_or_zero(path_ + "-wal");
  stats.events = events_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace aw::store
