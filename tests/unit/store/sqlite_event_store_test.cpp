// Tests for the SQLite event log: round trips through a reopen, retention, all-or-nothing batches, the
// disk quota and opening failures. Each test works in its own temporary directory.
#include "store/sqlite/sqlite_event_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "protocol/envelope.hpp"

namespace aw::store {
namespace {

constexpr std::int64_t kNoAgeLimit = std::numeric_limits<std::int64_t>::min();
constexpr std::size_t kNoCountLimit = std::numeric_limits<std::size_t>::max();

Event make_event(std::string agent_id, std::uint64_t seq, std::int64_t ts_ms, std::string data = "{}",
                 std::string idempotency_key = "") {
  // The store keeps the fields, never the frame.
  return *protocol::make_event(agent_id, seq, "update", ts_ms, data, std::move(idempotency_key));
}

std::vector<const Event*> pointers(const std::vector<Event>& events) {
  std::vector<const Event*> out;
  for (const Event& event : events) out.push_back(&event);
  return out;
}

std::vector<std::uint64_t> seqs(const std::vector<StoredEvent>& events) {
  std::vector<std::uint64_t> out;
  for (const StoredEvent& event : events) out.push_back(event.seq);
  return out;
}

// What the per-channel load_recent() of schema version 1 answered, over load_events(): the newest
// `limit` events of one channel with ts_ms >= min_ts_ms, oldest first.
std::vector<StoredEvent> load_recent(EventStore& store, std::string_view agent_id, std::size_t limit,
                                     std::int64_t min_ts_ms) {
  std::deque<StoredEvent> recent;
  store.load_events(min_ts_ms, [&](StoredEvent&& event) {
    if (event.agent_id != agent_id || limit == 0) return;
    recent.push_back(std::move(event));
    if (recent.size() > limit) recent.pop_front();
  });
  return {std::make_move_iterator(recent.begin()), std::make_move_iterator(recent.end())};
}

class SqliteEventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "aw-store-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "events.db").string();
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::unique_ptr<SqliteEventStore> open(std::uint64_t max_bytes = 0, FsyncMode mode = FsyncMode::normal,
                                         std::size_t keep_per_channel = SqliteEventStore::kKeepAll) {
    return std::make_unique<SqliteEventStore>(path_, mode, max_bytes, keep_per_channel);
  }

  std::uint64_t file_size(const std::string& path) const {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    return ec ? 0 : static_cast<std::uint64_t>(size);
  }

  // Appends `count` events seq first..first+count-1 to `agent_id`, registering it when `first` is 1.
  static void append_run(EventStore& store, const std::string& agent_id, std::uint64_t first,
                         std::size_t count, std::int64_t ts_ms = 1000, const std::string& data = "{}") {
    std::vector<StoredChannel> channels;
    if (first == 1) channels.push_back({agent_id, "epoch-" + agent_id, 0});
    std::vector<Event> events;
    for (std::size_t i = 0; i < count; ++i) events.push_back(make_event(agent_id, first + i, ts_ms, data));
    store.append(channels, pointers(events), {});
  }

  // The first column of the first row of `sql`, read on a connection of its own ("" when no row).
  // Runs SQL on the database file directly, as an older server or another tool would have.
  void write_sql(const std::string& sql) const {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }

  std::string query(const std::string& sql) const {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    std::string value;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      if (text != nullptr) value = text;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
  }

  std::string stored_last_seq(const std::string& agent_id) const {
    return query("SELECT last_seq FROM channels WHERE agent_id = '" + agent_id + "'");
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteEventStoreTest, RoundTripThroughReopen) {
  {
    auto store = open();
    EXPECT_TRUE(store->durable());
    EXPECT_TRUE(store->load_channels().empty());
    std::vector<Event> events;
    for (std::uint64_t seq = 1; seq <= 5; ++seq) events.push_back(make_event("alpha", seq, 100 * seq));
    events.push_back(make_event("beta", 1, 700));
    store->append({{"alpha", "e-alpha", 0}, {"beta", "e-beta", 0}}, pointers(events), {});
    EXPECT_EQ(store->stats().events, 6u);
  }

  auto store = open();
  const auto channels = store->load_channels();
  ASSERT_EQ(channels.size(), 2u);
  EXPECT_EQ(channels[0].agent_id, "alpha");
  EXPECT_EQ(channels[0].epoch, "e-alpha");
  EXPECT_EQ(channels[0].last_seq, 5u);
  EXPECT_EQ(channels[1].agent_id, "beta");
  EXPECT_EQ(channels[1].epoch, "e-beta");
  EXPECT_EQ(channels[1].last_seq, 1u);

  const auto all = load_recent(*store, "alpha", 100, kNoAgeLimit);
  EXPECT_EQ(seqs(all), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(all[2].agent_id, "alpha");
  EXPECT_EQ(all[2].type, "update");
  EXPECT_EQ(all[2].ts_ms, 300);
  EXPECT_EQ(all[2].data, "{}");

  // The newest `limit`, oldest first.
  EXPECT_EQ(seqs(load_recent(*store, "alpha", 2, kNoAgeLimit)), (std::vector<std::uint64_t>{4, 5}));
  // min_ts_ms is inclusive.
  EXPECT_EQ(seqs(load_recent(*store, "alpha", 100, 300)), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(seqs(load_recent(*store, "alpha", 1, 300)), (std::vector<std::uint64_t>{5}));
  EXPECT_TRUE(load_recent(*store, "alpha", 0, kNoAgeLimit).empty());
  EXPECT_TRUE(load_recent(*store, "nobody", 10, kNoAgeLimit).empty());
  EXPECT_EQ(store->stats().events, 6u);
  EXPECT_GT(store->stats().bytes, 0u);
}

TEST_F(SqliteEventStoreTest, Utf8AndLargeDataAreKeptByteForByte) {
  const std::string utf8 = R"({"text":"héllo wörld ✓ 日本語 😀","quote":"\"x\"","nl":"a\nb"})";
  std::string large = "{\"blob\":\"";
  for (int i = 0; large.size() < 3 * 1024 * 1024; ++i) large += static_cast<char>('a' + i % 26);
  large += "\"}";
  {
    auto store = open();
    std::vector<Event> events{*protocol::make_event("ch", 1, "tipo.ñ", 1, utf8),
                              make_event("ch", 2, 2, large)};
    store->append({{"ch", "ép", 0}}, pointers(events), {});
  }
  auto store = open();
  const auto loaded = load_recent(*store, "ch", 10, kNoAgeLimit);
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded[0].data, utf8);
  EXPECT_EQ(loaded[0].type, "tipo.ñ");
  EXPECT_EQ(loaded[1].data.size(), large.size());
  EXPECT_EQ(loaded[1].data, large);
  EXPECT_EQ(store->load_channels().at(0).epoch, "ép");
}

TEST_F(SqliteEventStoreTest, IdempotencyKeyRoundTrip) {
  {
    auto store = open();
    std::vector<Event> events{make_event("ch", 1, 1, "{}", "key-1"), make_event("ch", 2, 2, "{}", "")};
    store->append({{"ch", "e", 0}}, pointers(events), {});
  }
  auto store = open();
  const auto loaded = load_recent(*store, "ch", 10, kNoAgeLimit);
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded[0].idempotency_key, "key-1");
  EXPECT_EQ(loaded[1].idempotency_key, "");
}

TEST_F(SqliteEventStoreTest, PruneByCountKeepsNewestPerChannel) {
  auto store = open();
  append_run(*store, "big", 1, 10);
  append_run(*store, "small", 1, 2);
  append_run(*store, "big", 11, 5);

  store->prune(4, kNoAgeLimit);
  EXPECT_EQ(seqs(load_recent(*store, "big", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{12, 13, 14, 15}));
  EXPECT_EQ(seqs(load_recent(*store, "small", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(store->stats().events, 6u);

  // Counting continues correctly across prunes and reopens.
  append_run(*store, "big", 16, 3);
  store->prune(4, kNoAgeLimit);
  EXPECT_EQ(seqs(load_recent(*store, "big", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{15, 16, 17, 18}));
  store.reset();
  store = open();
  EXPECT_EQ(store->stats().events, 6u);
  store->prune(1, kNoAgeLimit);
  EXPECT_EQ(seqs(load_recent(*store, "big", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{18}));
  EXPECT_EQ(seqs(load_recent(*store, "small", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(store->stats().events, 2u);
}

TEST_F(SqliteEventStoreTest, PruneByAge) {
  auto store = open();
  std::vector<Event> events;
  for (std::uint64_t seq = 1; seq <= 10; ++seq) events.push_back(make_event("a", seq, 100 * seq));
  for (std::uint64_t seq = 1; seq <= 3; ++seq) events.push_back(make_event("b", seq, 10 * seq));
  store->append({{"a", "ea", 0}, {"b", "eb", 0}}, pointers(events), {});

  store->prune(kNoCountLimit, 500);
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)),
            (std::vector<std::uint64_t>{5, 6, 7, 8, 9, 10}));
  EXPECT_TRUE(load_recent(*store, "b", 100, kNoAgeLimit).empty());
  EXPECT_EQ(store->stats().events, 6u);

  // Age and count together: age removes 5..7, then the count keeps the newest 2 of what is left.
  store->prune(2, 800);
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{9, 10}));
  EXPECT_EQ(store->stats().events, 2u);
}

TEST_F(SqliteEventStoreTest, PruneNeverLowersLastSeq) {
  {
    auto store = open();
    append_run(*store, "ch", 1, 10);
    store->prune(0, kNoAgeLimit);
    EXPECT_TRUE(load_recent(*store, "ch", 100, kNoAgeLimit).empty());
    EXPECT_EQ(store->stats().events, 0u);
  }
  auto store = open();
  const auto channels = store->load_channels();
  ASSERT_EQ(channels.size(), 1u);
  EXPECT_EQ(channels[0].last_seq, 10u);
  EXPECT_EQ(channels[0].epoch, "epoch-ch");

  // A pruned seq cannot be reused: numbering never goes back.
  EXPECT_THROW(append_run(*store, "ch", 5, 1), StoreError);
  append_run(*store, "ch", 11, 1);
  EXPECT_EQ(store->load_channels().at(0).last_seq, 11u);
}

TEST_F(SqliteEventStoreTest, FailedBatchStoresNothingAndStoreStaysUsable) {
  auto store = open();
  append_run(*store, "old", 1, 3);

  // A new channel, good events, then a duplicate primary key inside the batch.
  std::vector<Event> bad{make_event("new", 1, 1), make_event("new", 2, 1), make_event("old", 4, 1),
                         make_event("new", 2, 1)};
  try {
    store->append({{"new", "e-new", 0}}, pointers(bad), {});
    FAIL() << "append of a batch with a duplicate key succeeded";
  } catch (const StoreError& e) {
    EXPECT_FALSE(e.full());
  }
  // A duplicate of an already stored event fails the same way.
  std::vector<Event> dup{make_event("old", 4, 1), make_event("old", 3, 1)};
  EXPECT_THROW(store->append({}, pointers(dup), {}), StoreError);

  const auto check_nothing_visible = [](EventStore& s) {
    const auto channels = s.load_channels();
    ASSERT_EQ(channels.size(), 1u);
    EXPECT_EQ(channels[0].agent_id, "old");
    EXPECT_EQ(channels[0].last_seq, 3u);
    EXPECT_EQ(seqs(load_recent(s, "old", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_TRUE(load_recent(s, "new", 100, kNoAgeLimit).empty());
    EXPECT_EQ(s.stats().events, 3u);
  };
  check_nothing_visible(*store);

  // The same batch without the duplicate goes through on the same connection.
  bad.pop_back();
  store->append({{"new", "e-new", 0}}, pointers(bad), {});
  EXPECT_EQ(seqs(load_recent(*store, "new", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(seqs(load_recent(*store, "old", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(store->stats().events, 6u);

  store.reset();
  store = open();
  EXPECT_EQ(store->stats().events, 6u);
}

TEST_F(SqliteEventStoreTest, EventsOfAnUnregisteredChannelAreRefused) {
  auto store = open();
  std::vector<Event> events{make_event("ghost", 1, 1)};
  EXPECT_THROW(store->append({}, pointers(events), {}), StoreError);
  EXPECT_TRUE(store->load_channels().empty());
  EXPECT_EQ(store->stats().events, 0u);
}

TEST_F(SqliteEventStoreTest, ReRegisteringAChannel) {
  auto store = open();
  append_run(*store, "ch", 1, 2);
  // Same epoch (a retried registration): accepted, last_seq untouched.
  std::vector<Event> more{make_event("ch", 3, 1)};
  store->append({{"ch", "epoch-ch", 0}}, pointers(more), {});
  EXPECT_EQ(store->load_channels().at(0).last_seq, 3u);
  // Another epoch: refused, the stored channel unchanged.
  EXPECT_THROW(store->append({{"ch", "other", 0}}, {}, {}), StoreError);
  EXPECT_EQ(store->load_channels().at(0).epoch, "epoch-ch");
}

TEST_F(SqliteEventStoreTest, LastSeqSurvivesAgePruneOfAllItsEventsAcrossReopen) {
  {
    auto store = open();
    std::vector<Event> events;
    for (std::uint64_t seq = 1; seq <= 10; ++seq) events.push_back(make_event("a", seq, 100));
    for (std::uint64_t seq = 1; seq <= 3; ++seq) events.push_back(make_event("b", seq, 1000));
    store->append({{"a", "ea", 0}, {"b", "eb", 0}}, pointers(events), {});
    store->prune(kNoCountLimit, 500);
    EXPECT_TRUE(load_recent(*store, "a", 100, kNoAgeLimit).empty());
    EXPECT_EQ(store->stats().events, 3u);
    // Raised by the prune that deleted a's events; b lost nothing, so its row was never written.
    EXPECT_EQ(stored_last_seq("a"), "10");
    EXPECT_EQ(stored_last_seq("b"), "0");
  }
  auto store = open();
  const auto channels = store->load_channels();
  ASSERT_EQ(channels.size(), 2u);
  EXPECT_EQ(channels[0].last_seq, 10u);
  EXPECT_EQ(channels[1].last_seq, 3u);
  EXPECT_THROW(append_run(*store, "a", 10, 1), StoreError);
  append_run(*store, "a", 11, 1);
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{11}));
}

TEST_F(SqliteEventStoreTest, LastSeqComesFromTheStoredEventsAfterReopen) {
  {
    auto store = open();
    append_run(*store, "ch", 1, 3);
    append_run(*store, "ch", 4, 2);
    append_run(*store, "other", 1, 1);
    append_run(*store, "ch", 6, 1);
    EXPECT_EQ(store->load_channels().at(0).last_seq, 6u);
  }
  // Appends never write channels.last_seq: that would be a random page write per channel per commit.
  EXPECT_EQ(stored_last_seq("ch"), "0");
  EXPECT_EQ(stored_last_seq("other"), "0");

  auto store = open();
  const auto channels = store->load_channels();
  ASSERT_EQ(channels.size(), 2u);
  EXPECT_EQ(channels[0].agent_id, "ch");
  EXPECT_EQ(channels[0].last_seq, 6u);
  EXPECT_EQ(channels[1].last_seq, 1u);
  EXPECT_THROW(append_run(*store, "ch", 6, 1), StoreError);
  append_run(*store, "ch", 7, 1);
  EXPECT_EQ(store->load_channels().at(0).last_seq, 7u);

  // Pruning by count keeps the newest, yet raises the row too.
  store->prune(2, kNoAgeLimit);
  EXPECT_EQ(stored_last_seq("ch"), "7");
  EXPECT_EQ(seqs(load_recent(*store, "ch", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{6, 7}));
}

TEST_F(SqliteEventStoreTest, RefusedAppendChangesNothing) {
  auto store = open();
  append_run(*store, "ch", 1, 3);
  const auto check_unchanged = [&] {
    const auto channels = store->load_channels();
    ASSERT_EQ(channels.size(), 1u);
    EXPECT_EQ(channels[0].last_seq, 3u);
    EXPECT_EQ(seqs(load_recent(*store, "ch", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_EQ(store->stats().events, 3u);
    EXPECT_EQ(query("SELECT count(*) FROM events"), "3");
  };

  // A seq not above the last one.
  std::vector<Event> stale{make_event("ch", 3, 1)};
  EXPECT_THROW(store->append({}, pointers(stale), {}), StoreError);
  check_unchanged();
  // Seqs that do not rise within the batch.
  std::vector<Event> twice{make_event("ch", 4, 1), make_event("ch", 4, 1)};
  EXPECT_THROW(store->append({}, pointers(twice), {}), StoreError);
  std::vector<Event> backwards{make_event("ch", 5, 1), make_event("ch", 4, 1)};
  EXPECT_THROW(store->append({}, pointers(backwards), {}), StoreError);
  check_unchanged();
  // An unregistered channel next to good events.
  std::vector<Event> ghost{make_event("ch", 4, 1), make_event("ghost", 1, 1)};
  EXPECT_THROW(store->append({}, pointers(ghost), {}), StoreError);
  check_unchanged();
  // A channel registered by a batch that failed is not registered.
  std::vector<Event> failing{make_event("new", 1, 1), make_event("ch", 3, 1)};
  EXPECT_THROW(store->append({{"new", "e-new", 0}}, pointers(failing), {}), StoreError);
  check_unchanged();
  std::vector<Event> unregistered{make_event("new", 1, 1)};
  EXPECT_THROW(store->append({}, pointers(unregistered), {}), StoreError);
  check_unchanged();

  // The next valid batch goes through, with seqs right after the stored ones.
  std::vector<Event> good{make_event("ch", 4, 1), make_event("new", 1, 1), make_event("ch", 5, 1)};
  store->append({{"new", "e-new", 0}}, pointers(good), {});
  EXPECT_EQ(seqs(load_recent(*store, "ch", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(seqs(load_recent(*store, "new", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(store->stats().events, 6u);
  store.reset();
  store = open();
  const auto channels = store->load_channels();
  ASSERT_EQ(channels.size(), 2u);
  EXPECT_EQ(channels[0].last_seq, 5u);
  EXPECT_EQ(channels[1].last_seq, 1u);
  EXPECT_EQ(channels[1].epoch, "e-new");
}

// The tables of schema versions 1 and 2 (the same as version 3's); their indexes differ.
constexpr const char* kOldTables = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE channels(agent_id TEXT PRIMARY KEY, epoch TEXT NOT NULL,
                      last_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE events(id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
                    ts_ms INTEGER NOT NULL, data TEXT NOT NULL, idempotency_key TEXT);
CREATE TABLE state(agent_id TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL,
                   PRIMARY KEY(agent_id, kind, id)) WITHOUT ROWID;
)sql";

TEST_F(SqliteEventStoreTest, Version1DatabaseIsUpgraded) {
  // The schema as version 1 created it, with what it stored: last_seq raised by every append, some
  // events pruned.
  constexpr const char* kVersion1 = R"sql(
CREATE UNIQUE INDEX events_by_channel ON events(agent_id, seq);
CREATE INDEX events_by_ts ON events(ts_ms);
INSERT INTO meta VALUES('schema_version', '1');
INSERT INTO channels VALUES('a', 'ea', 5), ('b', 'eb', 2), ('gone', 'eg', 9);
INSERT INTO events(agent_id, seq, type, ts_ms, data, idempotency_key) VALUES
  ('a', 3, 't', 100, '{"n":3}', NULL), ('b', 1, 't', 110, '{}', 'k1'), ('a', 4, 't', 120, '{"n":4}', NULL),
  ('b', 2, 't', 130, '{}', NULL), ('a', 5, 't', 140, '{"n":5}', NULL);
INSERT INTO state VALUES('a', 'workflow', 'w1', '{"x":1}');
)sql";
  write_sql(std::string(kOldTables) + kVersion1);

  {
    auto store = open();
    const auto channels = store->load_channels();
    ASSERT_EQ(channels.size(), 3u);
    EXPECT_EQ(channels[0].agent_id, "a");
    EXPECT_EQ(channels[0].epoch, "ea");
    EXPECT_EQ(channels[0].last_seq, 5u);
    EXPECT_EQ(channels[1].last_seq, 2u);
    EXPECT_EQ(channels[2].agent_id, "gone");
    EXPECT_EQ(channels[2].last_seq, 9u);
    const auto a = load_recent(*store, "a", 100, kNoAgeLimit);
    EXPECT_EQ(seqs(a), (std::vector<std::uint64_t>{3, 4, 5}));
    EXPECT_EQ(a[1].data, "{\"n\":4}");
    EXPECT_EQ(load_recent(*store, "b", 100, kNoAgeLimit).at(0).idempotency_key, "k1");
    EXPECT_EQ(store->load_state("a").size(), 1u);
    EXPECT_EQ(store->stats().events, 5u);

    EXPECT_EQ(query("SELECT count(*) FROM sqlite_master WHERE name = 'events_by_channel'"), "0");
    EXPECT_EQ(query("SELECT count(*) FROM sqlite_master WHERE name = 'events_by_ts'"), "0");
    EXPECT_EQ(query("SELECT value FROM meta WHERE key = 'schema_version'"), "3");

    EXPECT_THROW(append_run(*store, "a", 5, 1), StoreError);
    EXPECT_THROW(append_run(*store, "gone", 9, 1), StoreError);
    append_run(*store, "a", 6, 1);
    append_run(*store, "gone", 10, 1);
    store->prune(2, kNoAgeLimit);
    EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{5, 6}));
  }
  auto store = open();
  const auto channels = store->load_channels();
  EXPECT_EQ(channels[0].last_seq, 6u);
  EXPECT_EQ(channels[1].last_seq, 2u);
  EXPECT_EQ(channels[2].last_seq, 10u);
  EXPECT_EQ(store->stats().events, 5u);
}

TEST_F(SqliteEventStoreTest, Version2DatabaseIsUpgradedAndPrunedByAge) {
  // Version 2: version 3's tables plus the index on ts_ms.
  constexpr const char* kVersion2 = R"sql(
CREATE INDEX events_by_ts ON events(ts_ms);
INSERT INTO meta VALUES('schema_version', '2');
INSERT INTO channels VALUES('a', 'ea', 0), ('b', 'eb', 0);
INSERT INTO events(agent_id, seq, type, ts_ms, data, idempotency_key) VALUES
  ('a', 1, 't', 1000, '{}', NULL), ('b', 1, 't', 5000, '{}', NULL), ('a', 2, 't', 2000, '{}', NULL),
  ('a', 3, 't', 9000, '{}', NULL), ('b', 2, 't', 9500, '{}', NULL);
)sql";
  write_sql(std::string(kOldTables) + kVersion2);

  auto store = open();
  EXPECT_EQ(query("SELECT count(*) FROM sqlite_master WHERE name = 'events_by_ts'"), "0");
  EXPECT_EQ(query("SELECT value FROM meta WHERE key = 'schema_version'"), "3");
  // The commit times of rows stored before the upgrade are known from the scan at open: age pruning
  // finds them, the one whose time is out of rowid order (b#1) among them.
  store->prune(kNoCountLimit, 5001);
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(seqs(load_recent(*store, "b", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(store->stats().events, 2u);
  const auto channels = store->load_channels();
  EXPECT_EQ(channels[0].last_seq, 3u);
  EXPECT_EQ(channels[1].last_seq, 2u);
}

TEST_F(SqliteEventStoreTest, AgePruneFindsEventsStoredBeforeAReopen) {
  {
    auto store = open();
    std::vector<Event> old_events{make_event("a", 1, 1000), make_event("a", 2, 1500),
                                  make_event("b", 1, 2500)};
    store->append({{"a", "ea", 0}, {"b", "eb", 0}}, pointers(old_events), {});
  }
  auto store = open();
  std::vector<Event> newer{make_event("a", 3, 7000), make_event("b", 2, 8000)};
  store->append({}, pointers(newer), {});
  store->prune(kNoCountLimit, 2000);  // a#1 and a#2 are older; b#1 is not
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(seqs(load_recent(*store, "b", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{1, 2}));
  store->prune(kNoCountLimit, 7500);
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{}));
  EXPECT_EQ(seqs(load_recent(*store, "b", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(store->stats().events, 1u);
  // Everything goes, then new events come and age out in their turn.
  store->prune(kNoCountLimit, 100000);
  EXPECT_EQ(store->stats().events, 0u);
  std::vector<Event> later{make_event("a", 4, 200000), make_event("b", 3, 300000)};
  store->append({}, pointers(later), {});
  store->prune(kNoCountLimit, 250000);
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{}));
  EXPECT_EQ(seqs(load_recent(*store, "b", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{3}));
  const auto channels = store->load_channels();
  EXPECT_EQ(channels[0].last_seq, 4u);
}

TEST_F(SqliteEventStoreTest, SecondStoreOnTheSameFileIsRefused) {
  auto store = open();
  append_run(*store, "ch", 1, 2);
  try {
    open();
    FAIL() << "a second store opened a database in use";
  } catch (const StoreError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("in use by another agentwire process"), std::string::npos) << what;
    EXPECT_NE(what.find(path_), std::string::npos) << what;
    EXPECT_FALSE(e.full());
  }
  // The first one is unharmed, and once it is closed the file opens again.
  append_run(*store, "ch", 3, 1);
  store.reset();
  store = open();
  EXPECT_EQ(store->load_channels().at(0).last_seq, 3u);
}

TEST_F(SqliteEventStoreTest, AgePruneOfEventsWhoseRowidsAreNotInTsOrder) {
  auto store = open();
  // ts_ms comes from a wall clock that may step back: age does not always take a channel's oldest rowids.
  std::vector<Event> events{make_event("a", 1, 900),  make_event("b", 1, 100), make_event("a", 2, 100),
                            make_event("a", 3, 800),  make_event("b", 2, 900), make_event("a", 4, 200),
                            make_event("a", 5, 1000), make_event("b", 3, 300)};
  store->append({{"a", "ea", 0}, {"b", "eb", 0}}, pointers(events), {});

  store->prune(kNoCountLimit, 500);
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{1, 3, 5}));
  // b's newest event aged out while an older one stays: its last seq must still survive.
  EXPECT_EQ(seqs(load_recent(*store, "b", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(store->stats().events, 4u);

  // Count pruning afterwards takes the oldest of what is left.
  store->prune(2, kNoAgeLimit);
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{3, 5}));
  // Both together: age takes 3 (ts 800), then the count keeps the newest 1 of what is left.
  std::vector<Event> more{make_event("a", 6, 400), make_event("a", 7, 2000)};
  store->append({}, pointers(more), {});
  store->prune(1, 850);
  EXPECT_EQ(seqs(load_recent(*store, "a", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{7}));
  EXPECT_EQ(seqs(load_recent(*store, "b", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(store->stats().events, 2u);

  store.reset();
  store = open();
  const auto channels = store->load_channels();
  EXPECT_EQ(channels[0].last_seq, 7u);
  EXPECT_EQ(channels[1].last_seq, 3u);
  EXPECT_EQ(store->stats().events, 2u);
  EXPECT_THROW(append_run(*store, "b", 3, 1), StoreError);
  append_run(*store, "b", 4, 1);
}

TEST_F(SqliteEventStoreTest, PruneByCountWithInterleavedChannels) {
  auto store = open();
  // Round robin over three channels, with a burst of one channel in the middle (consecutive rowids).
  std::vector<Event> events;
  for (std::uint64_t seq = 1; seq <= 6; ++seq) {
    for (const char* agent : {"x", "y", "z"}) events.push_back(make_event(agent, seq, 1000));
  }
  for (std::uint64_t seq = 7; seq <= 12; ++seq) events.push_back(make_event("y", seq, 1000));
  for (const char* agent : {"x", "z"}) events.push_back(make_event(agent, 7, 1000));
  store->append({{"x", "e", 0}, {"y", "e", 0}, {"z", "e", 0}}, pointers(events), {});

  store->prune(3, kNoAgeLimit);
  EXPECT_EQ(seqs(load_recent(*store, "x", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{5, 6, 7}));
  EXPECT_EQ(seqs(load_recent(*store, "y", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{10, 11, 12}));
  EXPECT_EQ(seqs(load_recent(*store, "z", 100, kNoAgeLimit)), (std::vector<std::uint64_t>{5, 6, 7}));
  EXPECT_EQ(store->stats().events, 9u);
  EXPECT_EQ(query("SELECT count(*) FROM events"), "9");

  // Over many prunes the in-memory rowid lists stay right (compaction of their dead front).
  std::uint64_t next = 13;
  for (int round = 0; round < 50; ++round) {
    append_run(*store, "y", next, 7);
    next += 7;
    store->prune(3, kNoAgeLimit);
    ASSERT_EQ(seqs(load_recent(*store, "y", 100, kNoAgeLimit)),
              (std::vector<std::uint64_t>{next - 3, next - 2, next - 1}));
  }
  EXPECT_EQ(store->stats().events, 9u);
  store.reset();
  store = open();
  EXPECT_EQ(store->stats().events, 9u);
  EXPECT_EQ(store->load_channels().at(1).last_seq, next - 1);
}

TEST_F(SqliteEventStoreTest, FindChannelGivesEpochAndExactLastSeq) {
  auto store = open();
  EXPECT_FALSE(store->find_channel("x").has_value());
  append_run(*store, "x", 1, 5);
  store->prune(2, kNoAgeLimit);
  append_run(*store, "x", 6, 1);
  auto found = store->find_channel("x");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->epoch, "epoch-x");
  EXPECT_EQ(found->last_seq, 6u);
  store.reset();
  store = open();
  found = store->find_channel("x");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->last_seq, 6u);
  EXPECT_FALSE(store->find_channel("y").has_value());
}

TEST_F(SqliteEventStoreTest, LoadChannelEventsReadsOneChannelAfterASeq) {
  auto store = open();
  // Interleaved with another channel, so the channel's rowids are not consecutive.
  std::vector<Event> events;
  for (std::uint64_t seq = 1; seq <= 9; ++seq) {
    events.push_back(make_event("a", seq, 1000, "{\"n\":" + std::to_string(seq) + "}"));
    events.push_back(make_event("b", seq, 1000));
  }
  store->append({{"a", "e", 0}, {"b", "e", 0}}, pointers(events), {});
  store->prune(6, kNoAgeLimit);  // a keeps 4..9
  auto read = [&](std::uint64_t after, std::size_t max) {
    std::vector<StoredEvent> out;
    store->load_channel_events("a", after, [&](StoredEvent&& e) {
      out.push_back(std::move(e));
      return out.size() < max;
    });
    return out;
  };
  EXPECT_EQ(seqs(read(0, 100)), (std::vector<std::uint64_t>{4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(seqs(read(5, 100)), (std::vector<std::uint64_t>{6, 7, 8, 9}));
  EXPECT_EQ(seqs(read(6, 2)), (std::vector<std::uint64_t>{7, 8}));
  EXPECT_TRUE(read(9, 100).empty());
  auto one = read(6, 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].agent_id, "a");
  EXPECT_EQ(one[0].data, "{\"n\":7}");
  EXPECT_EQ(one[0].type, "update");
  bool visited = false;
  store->load_channel_events("nobody", 0, [&](StoredEvent&&) { return visited = true; });
  EXPECT_FALSE(visited);
}

TEST_F(SqliteEventStoreTest, QuotaGivesFullErrorAndPruneRecovers) {
  auto store = open(512 * 1024);
  const std::string data(4000, 'x');
  std::uint64_t next = 1;
  bool hit_full = false;
  for (int batch = 0; batch < 1000 && !hit_full; ++batch) {
    try {
      append_run(*store, "ch", next, 10, 1000 + batch, data);
      next += 10;
    } catch (const StoreError& e) {
      EXPECT_TRUE(e.full()) << e.what();
      hit_full = true;
    }
  }
  ASSERT_TRUE(hit_full);
  ASSERT_GT(next, 1u);

  // Nothing of the failed batch is there.
  EXPECT_EQ(store->load_channels().at(0).last_seq, next - 1);
  EXPECT_EQ(store->stats().events, next - 1);
  EXPECT_EQ(load_recent(*store, "ch", 100000, kNoAgeLimit).size(), next - 1);

  store->prune(10, kNoAgeLimit);
  EXPECT_EQ(store->stats().events, 10u);
  append_run(*store, "ch", next, 10, 5000, data);
  EXPECT_EQ(store->load_channels().at(0).last_seq, next + 9);
  EXPECT_EQ(store->stats().events, 20u);
}

TEST_F(SqliteEventStoreTest, EveryFsyncModeRoundTrips) {
  for (FsyncMode mode : {FsyncMode::normal, FsyncMode::always, FsyncMode::off}) {
    std::filesystem::remove(path_);
    std::filesystem::remove(path_ + "-wal");
    std::filesystem::remove(path_ + "-shm");
    {
      auto store = open(0, mode);
      append_run(*store, "ch", 1, 3);
    }
    auto store = open(0, mode);
    EXPECT_EQ(load_recent(*store, "ch", 10, kNoAgeLimit).size(), 3u);
  }
}

TEST_F(SqliteEventStoreTest, UnwritablePathThrows) {
  EXPECT_THROW(SqliteEventStore((dir_ / "missing" / "events.db").string(), FsyncMode::normal), StoreError);
  EXPECT_THROW(SqliteEventStore(dir_.string(), FsyncMode::normal), StoreError);  // a directory

  // Permissions do not stop root, so the read-only case only means something for other users.
  if (geteuid() != 0) {
    { auto store = open(); }
    std::filesystem::remove(path_ + "-wal");
    std::filesystem::remove(path_ + "-shm");
    ASSERT_EQ(chmod(path_.c_str(), 0444), 0);
    EXPECT_THROW(open(), StoreError);
  }
}

TEST_F(SqliteEventStoreTest, CorruptFileThrowsWithAClearMessage) {
  {
    std::ofstream out(path_, std::ios::binary);
    for (int i = 0; i < 1000; ++i) out << "this is not a database ";
  }
  try {
    open();
    FAIL() << "opened a corrupt file";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find(path_), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a database"), std::string::npos) << e.what();
    EXPECT_FALSE(e.full());
  }
}

TEST_F(SqliteEventStoreTest, NewerSchemaVersionIsRefused) {
  { auto store = open(); }
  write_sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  try {
    open();
    FAIL() << "opened a database with a newer schema";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
  }
}

TEST_F(SqliteEventStoreTest, TheWalIsCheckpointedWhileTheStoreRuns) {
  // Before: the checkpoints ran on a connection that had never read the file, so they did nothing and
  // the WAL grew with every commit (26 MB after 24k events).
  auto store = open();
  EXPECT_EQ(store->checkpoint_frames(), SqliteEventStore::kCheckpointFrames);
  const std::uint64_t wal_limit = store->wal_limit_bytes();
  EXPECT_EQ(wal_limit, 32 + SqliteEventStore::kCheckpointFrames * (4096 + 24));
  const std::string data(1000, 'w');
  std::uint64_t largest = 0;
  for (std::uint64_t batch = 0; batch < 1000; ++batch) {
    append_run(*store, "ch", 1 + batch * 20, 20, 1000, data);
    if (batch % 20 == 19) store->prune(100, kNoAgeLimit);
    largest = std::max(largest, file_size(path_ + "-wal"));
  }
  // 20 MB of events went through; the WAL never held more than its limit plus one transaction (a
  // prune of 400 events here, under 128 pages).
  EXPECT_LE(largest, wal_limit + 128 * (4096 + 24));
  // What the checkpoints copied is in the database file itself, readable without the WAL.
  store.reset();
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal"));
  EXPECT_EQ(stored_last_seq("ch"), "20000");
}

TEST_F(SqliteEventStoreTest, AWalLeftByACrashIsFoldedBackAtOpen) {
  const std::string data(100 * 1024, 'c');
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // One large commit makes the WAL file long; the process then dies without closing the database.
    SqliteEventStore store(path_, FsyncMode::normal);
    std::vector<StoredChannel> channels{{"ch", "epoch-ch", 0}};
    std::vector<Event> events;
    for (std::uint64_t seq = 1; seq <= 50; ++seq) events.push_back(make_event("ch", seq, 1000, data));
    store.append(channels, pointers(events), {});
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ASSERT_GT(file_size(path_ + "-wal"), 4u * 1024 * 1024);

  auto store = open();
  EXPECT_EQ(file_size(path_ + "-wal"), 0u);
  EXPECT_EQ(load_recent(*store, "ch", 100, kNoAgeLimit).size(), 50u);
}

TEST_F(SqliteEventStoreTest, ASmallDatabaseKeepsASmallWal) {
  // A history of 10 events per channel is a few pages: the WAL beside it stays near 64 pages, not 1024.
  auto store = open(0, FsyncMode::normal, 10);
  const std::string data(200, 's');
  std::uint64_t largest = 0;
  for (std::uint64_t batch = 0; batch < 2000; ++batch) {
    append_run(*store, "ch" + std::to_string(batch % 4), 1 + (batch / 4) * 5, 5, 1000, data);
    largest = std::max(largest, file_size(path_ + "-wal"));
  }
  EXPECT_GT(largest, 0u);
  EXPECT_LE(largest, 32 + (SqliteEventStore::kMinCheckpointFrames + 16) * (4096 + 24));
}

TEST_F(SqliteEventStoreTest, AQuotaKeepsTheWalSmall) {
  EXPECT_EQ(open(2 * 1024 * 1024)->checkpoint_frames(), 64u);       // an eighth of 512 pages
  EXPECT_EQ(open(16 * 1024 * 1024)->checkpoint_frames(), 512u);     // an eighth of 4096 pages
  EXPECT_EQ(open(1024 * 1024 * 1024)->checkpoint_frames(), 1024u);  // never more than without a quota
  auto store = open(2 * 1024 * 1024);
  const std::string data(1000, 'q');
  std::uint64_t largest = 0;
  for (std::uint64_t batch = 0; batch < 200; ++batch) {
    append_run(*store, "ch", 1 + batch * 10, 10, 1000, data);
    if (batch % 10 == 9) store->prune(50, kNoAgeLimit);
    largest = std::max(largest, file_size(path_ + "-wal"));
  }
  EXPECT_LE(largest, store->wal_limit_bytes() + 64 * (4096 + 24));
}

TEST_F(SqliteEventStoreTest, AppendTrimsAChannelPastItsHistorySize) {
  const std::size_t keep = 10;
  const std::size_t threshold = SqliteEventStore::trim_threshold(keep);
  ASSERT_GT(threshold, keep);
  auto store = open(0, FsyncMode::normal, keep);
  std::uint64_t next = 1;
  for (int i = 0; i < 100; ++i, next += 7) append_run(*store, "a", next, 7);
  append_run(*store, "b", 1, 3);
  // Without a prune, channel a never held threshold events or more, and kept at least `keep`.
  const std::uint64_t a_events = store->stats().events - 3;
  EXPECT_GE(a_events, keep);
  EXPECT_LT(a_events, threshold);
  EXPECT_EQ(query("SELECT count(*) FROM events WHERE agent_id = 'a'"), std::to_string(a_events));
  EXPECT_EQ(query("SELECT count(*) FROM events WHERE agent_id = 'b'"), "3");
  // The newest stay, numbering goes on, and after a reopen the channel's last seq is intact.
  EXPECT_EQ(seqs(load_recent(*store, "a", 1, kNoAgeLimit)), std::vector<std::uint64_t>{next - 1});
  store->prune(keep, kNoAgeLimit);
  EXPECT_EQ(store->stats().events, keep + 3);
  store.reset();
  store = open(0, FsyncMode::normal, keep);
  EXPECT_EQ(store->load_channels().at(0).last_seq, next - 1);
  append_run(*store, "a", next, 1);
  EXPECT_THROW(append_run(*store, "a", next, 1), StoreError);
}

TEST_F(SqliteEventStoreTest, TrimmingMakesRoomUnderTheQuota) {
  // The rows of a history that fits never fill the quota, however many events go through.
  auto store = open(256 * 1024, FsyncMode::normal, 10);
  const std::string data(2000, 'q');
  for (std::uint64_t next = 1; next < 5000; next += 10) append_run(*store, "ch", next, 10, 1000, data);
  EXPECT_LT(store->stats().events, SqliteEventStore::trim_threshold(10));
}

TEST_F(SqliteEventStoreTest, MissingChannelRowIsRebuiltFromItsEvents) {
  {
    auto store = open();
    append_run(*store, "lost", 1, 5);
    append_run(*store, "kept", 1, 2);
    store->prune(3, kNoAgeLimit);  // channels.last_seq of "lost" is now 5, two events pruned
    append_run(*store, "lost", 6, 2);
  }
  write_sql("DELETE FROM channels WHERE agent_id = 'lost'");

  auto store = open();
  const auto channels = store->load_channels();
  ASSERT_EQ(channels.size(), 2u);
  const StoredChannel& lost = channels.at(1);
  ASSERT_EQ(lost.agent_id, "lost");
  EXPECT_EQ(lost.last_seq, 7u);  // the highest stored seq
  EXPECT_FALSE(lost.epoch.empty());
  EXPECT_NE(lost.epoch, "epoch-lost");  // the old epoch went with the row: a new history
  EXPECT_EQ(stored_last_seq("lost"), "7");
  EXPECT_EQ(seqs(load_recent(*store, "lost", 10, kNoAgeLimit)), (std::vector<std::uint64_t>{3, 4, 5, 6, 7}));
  // Numbering continues above the stored events, and the row stays through a reopen.
  append_run(*store, "lost", 8, 1);
  EXPECT_THROW(append_run(*store, "lost", 8, 1), StoreError);
  store.reset();
  store = open();
  EXPECT_EQ(store->load_channels().at(1).epoch, lost.epoch);
  EXPECT_EQ(store->load_channels().at(1).last_seq, 8u);
}

TEST_F(SqliteEventStoreTest, DeletingTheOldLockFileDoesNotLetASecondStoreIn) {
  auto store = open();
  append_run(*store, "ch", 1, 1);
  std::filesystem::remove(path_ + "-lock");
  EXPECT_THROW(open(), StoreError);
  append_run(*store, "ch", 2, 1);
}

// Cold records (finished stream text): stored and erased in commits like any state record, left out of
// load_state(), read one at a time by load_cold_record() from another thread, kept across a reopen.
TEST_F(SqliteEventStoreTest, ColdRecordsAreStoredButNotLoadedWithTheState) {
  const std::string big(300 * 1024, 'x');
  {
    auto store = open();
    std::vector<Event> events{make_event("alpha", 1, 100)};
    StateRecord hot{"alpha", "stream", "st_1", R"({"n":1})"};
    StateRecord cold{"alpha", "~stream_text", "st_1", "\"" + big + "\""};
    store->append({{"alpha", "e-alpha", 0}}, pointers(events), {&hot, &cold});

    const auto state = store->load_state("alpha");
    ASSERT_EQ(state.size(), 1u);
    EXPECT_EQ(state[0].kind, "stream");
    std::optional<std::string> read;
    std::thread reader([&] { read = store->load_cold_record("alpha", "~stream_text", "st_1"); });
    reader.join();
    ASSERT_TRUE(read);
    EXPECT_EQ(*read, "\"" + big + "\"");
    EXPECT_FALSE(store->load_cold_record("alpha", "~stream_text", "st_2"));
    EXPECT_FALSE(store->load_cold_record("beta", "~stream_text", "st_1"));
  }
  auto store = open();
  EXPECT_EQ(store->load_state("alpha").size(), 1u);
  ASSERT_TRUE(store->load_cold_record("alpha", "~stream_text", "st_1"));
  std::vector<Event> events{make_event("alpha", 2, 200)};
  StateRecord erase{"alpha", "~stream_text", "st_1", ""};
  store->append({}, pointers(events), {&erase});
  EXPECT_FALSE(store->load_cold_record("alpha", "~stream_text", "st_1"));
}

}  // namespace
}  // namespace aw::store
