// The durable event log (`--store sqlite`): one SQLite database in WAL mode holding every channel's
// epoch and last seq, and the retained events of each channel.
//
// Threading: load_channels() and load_recent() are called at start-up, before the hub's writer thread
// starts; from then on append(), prune() and stats() are called from that one writer thread only, so the
// connection needs no locking of its own. stats() alone may also be called from any other thread at any
// time: it reads only an atomic counter and the files' sizes, never the connection.
#pragma once
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/event_store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace aw {

// What an acknowledged append survives.
enum class FsyncMode {
  normal,  // WAL + synchronous=NORMAL: a process crash (kill -9); may lose the last commits on an OS crash
  always,  // WAL + synchronous=FULL: power loss and OS crashes too
  off,     // WAL + synchronous=OFF: a process crash only (the data sits in the OS page cache); fastest
};

class SqliteEventStore final : public EventStore {
 public:
  // Opens `path`, creating the file and schema if missing. `max_bytes` > 0 caps the database size (a
  // quota: appends past it throw StoreError with full() true). Throws StoreError when the file cannot be
  // opened for writing, is not a database of ours, or has a newer schema.
  SqliteEventStore(std::string path, FsyncMode mode, std::uint64_t max_bytes = 0);
  ~SqliteEventStore() override;

  SqliteEventStore(const SqliteEventStore&) = delete;
  SqliteEventStore& operator=(const SqliteEventStore&) = delete;

  std::vector<StoredChannel> load_channels() override;
  std::vector<StoredEvent> load_recent(std::string_view agent_id, std::size_t limit,
                                       std::int64_t min_ts_ms) override;

  // Besides the interface's contract: a channel in `new_channels` that is already stored with the same
  // epoch is left as it is (a retried batch); with another epoch the batch fails. Every event's channel
  // must be registered, and each channel's seqs must be above its stored last_seq, or the batch fails.
  void append(const std::vector<StoredChannel>& new_channels, const std::vector<const Event*>& events,
              const std::vector<const StateRecord*>& records) override;
  std::vector<StateRecord> load_state(std::string_view agent_id) override;

  // Deletes events with ts_ms < min_ts_ms, then all but the newest `keep_per_channel` (0 keeps none) of
  // each channel; channels.last_seq is never lowered. Only channels over the limit are touched.
  void prune(std::size_t keep_per_channel, std::int64_t min_ts_ms) override;

  StoreStats stats() override;
  bool durable() const noexcept override { return true; }

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const noexcept;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept;
  };
  using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

  // Lets the per-channel counts be looked up by string_view without building a std::string.
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using CountMap = std::unordered_map<std::string, std::uint64_t, StringHash, std::equal_to<>>;

  class Transaction;

  void create_schema();
  void set_quota(std::uint64_t max_bytes);
  void prepare_statements();
  void prepare_state_statements();
  void count_events();
  Stmt prepare(std::string_view sql);
  void run(sqlite3_stmt* stmt, std::string_view what);
  [[noreturn]] void fail(int rc, std::string_view what) const;

  std::string path_;
  std::unique_ptr<sqlite3, DbCloser> db_;  // declared before the statements: finalized first, closed last

  Stmt begin_;
  Stmt commit_;
  Stmt rollback_;
  Stmt insert_channel_;
  Stmt channel_epoch_;
  Stmt raise_last_seq_;
  Stmt insert_event_;
  Stmt select_channels_;
  Stmt select_recent_;
  Stmt delete_older_;
  Stmt delete_oldest_;
  Stmt upsert_state_;
  Stmt delete_state_;
  Stmt select_state_;

  // Events stored per channel (channels with none are absent), kept exact by the writer thread so that
  // prune() finds the channels over the limit without asking the database.
  CountMap counts_;
  std::atomic<std::uint64_t> events_{0};

  // Checkpoints run on their own thread and connection: in WAL mode a checkpoint is where SQLite
  // fsyncs the database file, and on the writer thread that stall (tens of ms) would hold up every
  // publish behind it. A passive checkpoint never blocks the writer.
  void checkpoint_loop();
  std::mutex checkpoint_mutex_;
  std::condition_variable checkpoint_cv_;
  bool stopping_ = false;
  std::thread checkpointer_;
};

}  // namespace aw
