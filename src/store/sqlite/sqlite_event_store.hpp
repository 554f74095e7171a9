// The durable event log (`--store sqlite`): one SQLite database in WAL mode holding every channel's
// epoch, a lower bound of its last seq, and the retained events of each channel. What a per-channel
// index would answer (which events a channel has, its last seq) the writer keeps in memory instead,
// built by one scan of the log at open: the database is written almost only in commit order.
//
// One process at a time: that in-memory knowledge is only right while nobody else writes the file, so
// the store holds an exclusive flock on the database file itself for its lifetime and refuses to open
// while another process holds it (a lock file could be deleted by someone tidying the directory).
//
// Disk: the writer checkpoints the WAL itself once a commit leaves it past a quarter of the database (at
// least 64 pages, at most checkpoint_frames()), and with a known history size trims a channel's oldest events
// in the commit that takes it well past that size, so the files stay bounded between the hub's periodic
// prunes however fast events come.
//
// Threading: load_channels(), load_events() and load_state() are called at start-up, before the hub's
// writer thread starts; from then on append(), prune(), find_channel(), load_channel_events() and
// stats() are called from that one writer thread only, so the connection and the in-memory channel map
// need no locking of their own. stats() alone may also be called from any other thread at any time: it
// reads only an atomic counter and the files' sizes, never the connection.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/string_hash.hpp"
#include "store/event_store.hpp"
#include "store/sqlite/commit_times.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace aw::store {

// What an acknowledged append survives.
enum class FsyncMode {
  normal,  // WAL + synchronous=NORMAL: a process crash (kill -9); may lose the last commits on an OS crash
  always,  // WAL + synchronous=FULL: power loss and OS crashes too
  off,     // WAL + synchronous=OFF: a process crash only (the data sits in the OS page cache); fastest
};

class SqliteEventStore final : public EventStore {
 public:
  // No history size: append() never trims, only prune() deletes.
  static constexpr std::size_t kKeepAll = static_cast<std::size_t>(-1);
  // A commit that leaves the WAL holding a quarter as many pages as the database, but at least 64, is
  // followed by a checkpoint on the writer's connection: a small history keeps a small WAL beside it. At
  // most checkpoint_frames() pages wait, to which the WAL file is also cut back when it starts over: 1024
  // (4 MiB with 4 KiB pages, SQLite's own default), or with a quota an eighth of it if that is less (but
  // at least 64), so that the WAL adds little to what the quota allows.
  static constexpr std::uint64_t kCheckpointFrames = 1024;
  static constexpr std::uint64_t kMinCheckpointFrames = 64;

  // Opens `path`, creating the file and schema if missing (and upgrading a version-1 or -2 schema).
  // `max_bytes` > 0 caps the database size (a quota: appends past it throw StoreError with full() true).
  // `keep_per_channel` is the history size prune() will be given: append() trims a channel back to it
  // once it holds trim_threshold() events. A channels row missing for stored events is rebuilt (logged
  // as store_channel_rebuilt) with a new epoch and the highest stored seq.
  // Throws StoreError when the file cannot be opened for writing, is not a database of ours, has a newer
  // schema, or is in use by another process (another store object in this process counts too).
  SqliteEventStore(std::string path, FsyncMode mode, std::uint64_t max_bytes = 0,
                   std::size_t keep_per_channel = kKeepAll);
  ~SqliteEventStore() override;

  SqliteEventStore(const SqliteEventStore&) = delete;
  SqliteEventStore& operator=(const SqliteEventStore&) = delete;

  std::vector<StoredChannel> load_channels() override;
  void load_events(std::int64_t min_ts_ms, const std::function<void(StoredEvent&&)>& visit) override;

  // Besides the interface's contract: a channel in `new_channels` that is already stored with the same
  // epoch is left as it is (a retried batch); with another epoch the batch fails. Every event's channel
  // must be registered (earlier or in this batch), and each channel's seqs must rise through the batch,
  // starting above its last_seq, or the batch fails.
  void append(const std::vector<StoredChannel>& new_channels, const std::vector<const Event*>& events,
              const std::vector<const StateRecord*>& records) override;
  std::vector<StateRecord> load_state(std::string_view agent_id) override;
  std::optional<std::string> load_cold_record(std::string_view agent_id, std::string_view kind,
                                              std::string_view id) override;
  // Both on the writer thread, like append(): they read what the writer knows of the channel.
  std::optional<StoredChannel> find_channel(std::string_view agent_id) override;
  // By the channel's rowids (no index on (agent_id, seq)): a binary search, then one lookup per event.
  void load_channel_events(std::string_view agent_id, std::uint64_t after_seq,
                           const std::function<bool(StoredEvent&&)>& visit) override;

  // Deletes events with ts_ms < min_ts_ms, then all but the newest `keep_per_channel` (0 keeps none) of
  // each channel; in the same transaction it raises channels.last_seq of every channel that lost events,
  // so a channel's last seq survives its events. Only aged channels and those over the limit are touched.
  void prune(std::size_t keep_per_channel, std::int64_t min_ts_ms) override;

  StoreStats stats() override;
  bool durable() const noexcept override { return true; }

  // How many events a channel may reach before append() trims it back to keep_per_channel: enough above
  // it that a trim deletes a run of events at once rather than one per append.
  static std::size_t trim_threshold(std::size_t keep_per_channel) noexcept;

  std::uint64_t checkpoint_frames() const noexcept { return checkpoint_frames_; }
  // The WAL's size at checkpoint_frames() pages, to which it is cut back when it starts over.
  std::uint64_t wal_limit_bytes() const noexcept;

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const noexcept;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

  // What the writer knows of one channel, exact as long as it is the only writer of the file.
  struct ChannelLog {
    std::uint64_t last_seq = 0;         // the highest seq ever stored
    std::uint64_t stored_last_seq = 0;  // channels.last_seq on disk: a lower bound of last_seq
    // ids[head..] are the rowids of the channel's stored events, ascending (= commit order = seq order).
    // Pruning the oldest only moves head; the dead front is erased once it is the larger part.
    std::size_t head = 0;
    std::vector<std::int64_t> ids;
    bool registered = false;  // has its channels row (the epoch is stored)
    // Scratch for append(): valid while batch_mark equals the store's current batch number.
    bool batch_registers = false;  // named in the batch's new_channels
    std::uint64_t batch_mark = 0;
    std::uint64_t batch_last_seq = 0;  // the seq the batch's next event of this channel must exceed
    std::size_t batch_events = 0;      // the batch's events of this channel
    std::size_t batch_trim = 0;        // how many of its oldest stored events the batch deletes

    std::size_t stored() const noexcept { return ids.size() - head; }
  };
  using ChannelMap = StringMap<ChannelLog>;
  using ChannelEntry = ChannelMap::value_type;

  // The database file held open with an exclusive flock; closing it (or the process ending) releases it.
  class FileLock {
   public:
    FileLock() = default;
    ~FileLock();
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    void acquire(const std::string& db_path);

   private:
    int fd_ = -1;
  };

  class Transaction;

  void create_schema();
  void set_quota(std::uint64_t max_bytes);
  void prepare_statements();
  void prepare_state_statements();
  void open_cold_reader();
  void load_index();
  void rebuild_missing_channels();
  void touch(ChannelLog& log) noexcept;
  void trim_oldest(const std::string& agent_id, const ChannelLog& log, std::size_t count);
  static std::size_t drop_ids(ChannelLog& log, const std::vector<std::int64_t>& gone);
  static void compact(ChannelLog& log);
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int frames) noexcept;
  void checkpoint_if_due() noexcept;
  std::uint64_t database_pages() noexcept;
  Stmt prepare(std::string_view sql);
  void run(sqlite3_stmt* stmt, std::string_view what);
  [[noreturn]] void fail(int rc, std::string_view what) const;

  std::string path_;
  std::size_t keep_per_channel_;
  FileLock lock_;                          // declared before the connection: released after it is closed
  std::unique_ptr<sqlite3, DbCloser> db_;  // declared before the statements: finalized first, closed last

  Stmt begin_;
  Stmt commit_;
  Stmt rollback_;
  Stmt insert_channel_;
  Stmt channel_epoch_;
  Stmt raise_last_seq_;
  Stmt rebuild_channel_;
  Stmt insert_event_;
  Stmt select_channels_;
  Stmt select_events_;
  Stmt select_event_by_id_;
  Stmt delete_older_;
  Stmt min_id_;
  Stmt delete_ids_;
  Stmt page_count_;
  Stmt upsert_state_;
  Stmt delete_state_;
  Stmt select_state_;

  // load_cold_record()'s own read-only connection, opened once the schema exists; declared after db_ so
  // it closes first (the writer's connection, closed last, checkpoints and deletes the WAL).
  std::mutex cold_mutex_;
  std::unique_ptr<sqlite3, DbCloser> cold_db_;
  Stmt select_cold_;

  // Every channel with a channels row or stored events. What it says changes only after a commit: a
  // failed batch or prune leaves it as it was (append() drops again the entries it added for the batch).
  ChannelMap channels_;
  std::uint64_t batch_ = 0;                    // numbers append() calls, for ChannelLog's scratch fields
  std::vector<ChannelLog*> batch_logs_;        // append(): each event's channel
  std::vector<ChannelEntry*> batch_channels_;  // append(): each channel with events in the batch, once
  std::vector<std::int64_t> batch_rowids_;     // append(): each event's rowid
  CommitTimes commit_times_;                   // which rowids hold events of which commit times
  std::atomic<std::uint64_t> events_{0};

  std::uint64_t page_size_ = 4096;
  std::uint64_t checkpoint_frames_ = kCheckpointFrames;
  int wal_frames_ = 0;               // pages in the WAL after the last commit (SQLite's WAL hook tells)
  bool checkpoint_failing_ = false;  // logged once per spell of failures
};

}  // namespace aw::store
