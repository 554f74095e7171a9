// The broker: where a channel's events are numbered, stored and read back. The hub decides what to
// publish and knows its local subscribers; the broker gives each decided event its seq, stores it with
// the state records it changed (one batch all or nothing) and replays stored events for resume, history
// pages and start-up. The embedded broker (one node, an EventStore behind it) is the default; a shared
// one (Redis, many nodes) goes beside it behind this same interface.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.hpp"
#include "store/event_store.hpp"

namespace aw::broker {

// Nothing of a batch was stored (or nothing could be read). `kind` tells a full disk or quota, and a
// broker that cannot be reached at all, from other failures.
class BrokerError : public std::runtime_error {
 public:
  enum class Kind { failed, full, unavailable };
  BrokerError(const std::string& what, Kind kind) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

// A channel's numbering as the broker knows it: the epoch of its history and its newest seq (kept even
// after the events themselves are trimmed, so a seq is never handed out twice).
struct ChannelPosition {
  std::string agent_id;
  std::string epoch;
  std::uint64_t last_seq = 0;
};

// One channel's part of a batch.
struct BatchChannel {
  std::string agent_id;
  std::string epoch;
  std::uint64_t last_seq = 0;  // the channel's newest seq before the batch; after commit(), its newest
  bool registered = false;     // the broker knows the channel already (else commit() registers it)
};

// What an event changes in a shared broker's directory, which lets any node find the channel that
// holds a thing by the thing's id alone, list the channels that hold things, and find things idle too
// long. The domain decides which ids (hub::Decision::directory); the embedded broker ignores it all.
struct DirectoryChange {
  std::vector<std::string> added;    // ids that lead to this channel from this commit on
  std::vector<std::string> removed;  // ids forgotten
  int counted = 0;                   // change of the channel's count in the listing (+1 made, -1 gone)
  bool listed = false;               // the channel's listing entry changes at this commit
  std::vector<std::string> active;   // ids open, last active at this commit
  std::vector<std::string> closed;   // ids no longer open

  bool empty() const noexcept {
    return added.empty() && removed.empty() && counted == 0 && !listed && active.empty() && closed.empty();
  }
};

// A channel in a shared broker's listing: how many things it holds, and when one last changed.
struct ListedChannel {
  std::string agent_id;
  std::uint64_t count = 0;
  std::int64_t updated_ms = 0;
};

// An open id nothing reached for a while, and its channel.
struct IdleName {
  std::string id;
  std::string agent_id;
};

// An event a command decided on, waiting for its seq.
struct Draft {
  std::size_t channel = 0;  // index in Batch::channels
  std::string type;
  std::string data;  // raw JSON object
  std::string idempotency_key;
  bool mergeable = false;
  std::vector<store::StateRecord> records;  // stored in the same commit
  DirectoryChange directory;                // a shared broker's directory, written with the commit
  // A shared broker's check-and-apply: the channel's state version this draft was decided against; the
  // draft is stored only while the broker's version is still this one (else `conflict`).
  std::optional<std::uint64_t> decided_at;

  // Set by commit(), one of:
  EventPtr event;                           // the numbered, encoded event
  std::uint64_t duplicate_of = 0;           // the seq of the event the broker knew the key of
  bool conflict = false;                    // the state moved since `decided_at`: not stored, decide again
  std::optional<BrokerError::Kind> failed;  // its part of the batch could not be stored
  std::uint64_t state_version = 0;          // with `event` and records: the channel's state version after it
};

// What the hub's writer hands over in one go: each channel's drafts in the order they are to be numbered.
struct Batch {
  std::int64_t ts_ms = 0;
  std::vector<BatchChannel> channels;
  std::vector<Draft> drafts;

  void clear() {
    channels.clear();
    drafts.clear();
  }
};

// What a broker that pipelines commits keeps of a batch sent and not yet answered (send_commit).
struct CommitTicket {
  virtual ~CommitTicket() = default;
};

// A channel's domain state at one point of its numbering, read in one go (shared broker).
struct VersionedState {
  std::string epoch;
  std::uint64_t last_seq = 0;
  std::uint64_t version = 0;
  bool changed = false;                     // not the version asked about: `records` hold the state
  std::vector<store::StateRecord> records;  // cold ones excepted
};

// What a live event changed in its channel's state (cold records excepted; none for most events) and
// the channel's state version after it, as a shared broker tells it.
struct StateChange {
  std::uint64_t seq = 0;
  std::uint64_t version = 0;  // the channel's state version after the event
  std::vector<store::StateRecord> records;
};

// What a shared broker tells the hub of its node; called on the broker's own thread.
class BrokerListener {
 public:
  virtual ~BrokerListener() = default;
  // Events of a watched channel published by any node, in seq order (there may be gaps: pub/sub is
  // at most once, so the hub reads what it missed with replay()), each with its state change
  // (`changes[i]` goes with `events[i]`).
  virtual void on_events(std::string agent_id, std::vector<EventPtr> events,
                         std::vector<StateChange> changes) = 0;
  // A watched channel is subscribed again after the link to its instance was lost: events published
  // meanwhile were not seen.
  virtual void on_resubscribed(std::string agent_id) = 0;
};

// One broker instance as /healthz, stats and metrics show it: its state and its figures since start.
struct InstanceHealth {
  std::string name;
  bool up = false;
  std::uint64_t batches = 0;          // batch scripts that answered
  std::uint64_t events = 0;           // events they numbered and stored
  std::uint64_t errors = 0;           // commands and scripts that failed or got no answer
  std::uint64_t reconnects = 0;       // connections (writer or pub/sub) made again after one was lost
  std::uint64_t commit_us_sum = 0;    // time from sending a batch script to its answer, summed
  std::uint64_t watched = 0;          // channels subscribed to in pub/sub now
  std::uint64_t messages = 0;         // pub/sub messages received
  std::uint64_t gaps_backfilled = 0;  // gaps pub/sub left that were read back from the Stream
};

class Broker {
 public:
  virtual ~Broker() = default;

  // Every channel the broker knows, for start-up.
  virtual std::vector<ChannelPosition> load_channels() = 0;
  // Every retained event with ts_ms >= min_ts_ms, each channel's in seq order, for start-up.
  virtual void load_recent(std::int64_t min_ts_ms,
                           const std::function<void(std::string_view agent_id, EventPtr event)>& visit) = 0;
  // One channel's position, or nullopt when the broker never registered it.
  virtual std::optional<ChannelPosition> find_channel(std::string_view agent_id) = 0;
  // The stored events of one channel with seq > after_seq, in seq order, until `visit` returns false.
  virtual void replay(std::string_view agent_id, std::uint64_t after_seq,
                      const std::function<bool(EventPtr event)>& visit) = 0;
  // The channel's domain state records (cold ones excepted).
  virtual std::vector<store::StateRecord> load_state(std::string_view agent_id) = 0;
  // One cold record's json (kind starting with store::kColdKindPrefix), or nullopt when none is stored
  // (a broker that keeps none). Callable from any thread when cold_reads_any_thread(), else on the
  // writer thread only.
  virtual std::optional<std::string> load_cold_record(std::string_view /*agent_id*/,
                                                      std::string_view /*kind*/, std::string_view /*id*/) {
    return std::nullopt;
  }
  virtual bool cold_reads_any_thread() const noexcept { return false; }

  // Numbers and stores a batch: each channel's drafts get the seqs after its last_seq, in order; every
  // draft's `event` (or `duplicate_of`) is set and every channel's last_seq moved to its newest. Returns
  // when the batch is as durable as the broker promises; throws BrokerError when nothing was stored.
  // The embedded broker stores all or nothing; a shared one may answer per draft instead: `conflict`
  // (a draft with `decided_at` whose channel's state version moved) or `failed` (its instance could
  // not store it, while other instances stored their part).
  virtual void commit(Batch& batch) = 0;
  // A broker that pipelines commits (Redis: a network round trip per batch) lets the hub send a batch
  // before the one before it is answered: send_commit() sends it and returns at once, finish_commit()
  // waits for its answer and is the rest of commit(). Batches are stored in the order sent and finished
  // in that order; a batch stays unchanged in between; other calls may come in between (they are
  // answered after the batches sent before them). send_commit throws only what commit() would throw
  // before anything was sent.
  virtual bool pipelines_commits() const noexcept { return false; }
  virtual std::unique_ptr<CommitTicket> send_commit(Batch& batch) {
    commit(batch);
    return nullptr;
  }
  virtual void finish_commit(Batch& /*batch*/, std::unique_ptr<CommitTicket> /*sent*/) {}
  // Whether finish_commit would find the answer there (or the connection gone), waiting at most `wait`
  // for it.
  virtual bool commit_answered(const CommitTicket& /*sent*/, std::chrono::microseconds /*wait*/) {
    return true;
  }

  // Retention: at most `keep_per_channel` newest events per channel, none older than min_ts_ms.
  virtual void trim(std::size_t keep_per_channel, std::int64_t min_ts_ms) = 0;

  virtual store::StoreStats stats() = 0;
  // True when an acknowledged event survives a restart of this process.
  virtual bool durable() const noexcept = 0;
  // For logs and stats: "sqlite", "memory", "redis".
  virtual std::string_view name() const noexcept = 0;

  // A shared broker numbers for many nodes: a channel's numbering may move on without this node, so
  // the hub keeps only watched channels (those with local subscribers) in step, through the listener.
  virtual bool shared() const noexcept { return false; }
  // The channel's position, registering it with `candidate_epoch` when the broker does not know it.
  virtual ChannelPosition open_channel(std::string_view agent_id, const std::string& candidate_epoch) {
    if (auto pos = find_channel(agent_id)) return *pos;
    return {std::string(agent_id), candidate_epoch, 0};
  }
  // Starts (stops) telling the listener of the channel's new events. watch() returns once the
  // subscription is active, or at once when the instance cannot be reached (the listener then hears
  // on_resubscribed when it can).
  virtual void watch(std::string_view /*agent_id*/) {}
  virtual void unwatch(std::string_view /*agent_id*/) {}
  virtual void set_listener(BrokerListener* /*listener*/) {}
  // The seq of the channel's event stored with this Idempotency-Key, when a shared broker still knows it
  // (the embedded one: the hub's history ring answers that).
  virtual std::optional<std::uint64_t> seq_of_key(std::string_view /*agent_id*/, std::string_view /*key*/) {
    return std::nullopt;
  }
  // The channel's position, state version and (unless the version is still `known`) its state records,
  // read together. Only a shared broker versions state; the embedded one has no use for it.
  virtual VersionedState load_versioned_state(std::string_view agent_id, std::optional<std::uint64_t> known) {
    VersionedState vs;
    if (auto pos = find_channel(agent_id)) {
      vs.epoch = std::move(pos->epoch);
      vs.last_seq = pos->last_seq;
    }
    vs.changed = known != vs.version;
    if (vs.changed) vs.records = load_state(agent_id);
    return vs;
  }
  virtual std::vector<InstanceHealth> health() { return {}; }
  // The hub read events of a watched channel back from the broker that pub/sub did not bring.
  virtual void count_backfill(std::string_view /*agent_id*/) {}

  // A shared broker's directory (Draft::directory); the embedded one has none (every channel is loaded).
  // The channel an id leads to, or nullopt.
  virtual std::optional<std::string> find_name(std::string_view /*id*/) { return std::nullopt; }
  // Listed channels with ids above `after` (all when empty), by id, at most `limit`.
  virtual std::vector<ListedChannel> listed_channels(std::string_view /*after*/, std::size_t /*limit*/) {
    return {};
  }
  // Open ids last active before `before_ms`, at most `limit`; each is claimed (its last activity set to
  // `now_ms`), so no other node takes it until it has been idle that long again.
  virtual std::vector<IdleName> claim_idle(std::int64_t /*before_ms*/, std::int64_t /*now_ms*/,
                                           std::size_t /*limit*/) {
    return {};
  }
};

}  // namespace aw::broker
