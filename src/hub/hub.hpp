// The hub: agent channels, their recent history and state, and fan-out to local subscribers on their
// shards. It knows nothing of sockets. Publishes and commands go through one writer thread that decides
// them against the channel's state and hands each batch to the broker (broker/), which numbers and
// stores it; only then are the events recorded, broadcast and acknowledged, so an acknowledged event is
// stored and a broadcast event is never renumbered. The writer's stages are in hub_writer.cpp.
//
// Memory: a channel with no subscribers, no domain state and no event within the history TTL leaves
// memory (a channel that never had an event: as soon as its last subscriber leaves); its epoch and seq
// stay in the broker and come back when the channel is needed again. History holds at most
// history_max_bytes of event frames per channel and history_memory_budget in all, oldest first; a resume
// or history read past what memory holds reads the broker. Only the writer thread creates, loads or
// evicts channels and reads the broker; other threads that need it wait for the writer (run_on_writer).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/broker.hpp"
#include "core/string_hash.hpp"
#include "hub/channel.hpp"
#include "hub/channel_state.hpp"
#include "hub/command.hpp"
#include "hub/subscriber.hpp"

namespace aw::hub {

struct HubOptions {
  std::size_t history_size = 1000;                     // events kept per channel for resume
  std::int64_t history_ttl_ms = 24LL * 3600 * 1000;    // ... and for at most this long
  std::size_t max_batch = 1024;                        // events per group commit
  std::size_t max_pending = 100000;                    // publishes queued before new ones get 503
  std::int64_t prune_interval_ms = 5000;               // how often history and store are trimmed
  std::uint64_t history_max_bytes = 16ULL << 20;       // event bytes one channel holds in memory
  std::uint64_t history_memory_budget = 256ULL << 20;  // event bytes all channels hold in memory
  std::uint64_t max_stored_read_bytes = 4ULL << 20;    // read back from the store for one resume or page
  unsigned max_decide_attempts = 16;  // a command decided again after a state conflict, at most this often
};

struct PublishResult {
  enum class Status {
    ok,
    duplicate,
    refused,
    store_full,
    store_failed,
    broker_unavailable,
    contended,  // a shared broker's state kept moving under the command: decided too often
    overloaded,
    shutting_down
  } status;
  std::uint64_t seq = 0;
  std::string message;
  Decision decision;  // for ok: reply_json; for refused: the refusal
};
using PublishCallback = std::function<void(const PublishResult&)>;

struct JoinResult {
  Channel* channel = nullptr;
  std::string epoch;
  std::uint64_t seq = 0;   // latest seq at join
  bool recovered = false;  // the replay covers everything after `since`
  std::vector<EventPtr> replay;
  std::string state_json;  // filled when a resume was asked for and failed
};

struct HistoryPage {
  std::string epoch;
  std::uint64_t latest = 0;
  std::uint64_t oldest = 0;  // first seq still held (0 when none)
  bool complete = false;     // every event after `since` is held (false: some were pruned)
  std::vector<EventPtr> events;
};

struct ChannelSummary {
  std::string agent_id;
  std::uint32_t subscribers = 0;
  std::uint64_t last_seq = 0;
  std::size_t history_events = 0;
};

struct HubStats {
  std::size_t channels = 0;
  std::uint64_t subscribers = 0;
  std::uint64_t history_events = 0;  // held in memory
  std::uint64_t history_bytes = 0;
  std::uint64_t publishes = 0;
  std::uint64_t publish_failures = 0;
  std::uint64_t state_conflicts = 0;    // commands decided again because another node moved the state
  std::vector<ChannelSummary> busiest;  // by subscribers, at most `top`
};

class Hub final : private broker::BrokerListener {
 public:
  Hub(HubOptions options, broker::Broker& broker, ShardDispatcher& shards, ChannelStateFactory state = {});
  ~Hub() override;
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Loads channels and recent history from the broker, then starts the writer thread.
  void start();
  // Finishes queued publishes and stops the writer thread.
  void stop();

  // Queues an event; `done` runs on the writer thread once it is stored and broadcast (or failed), or
  // right away on the calling thread when the hub refuses it at the door (overloaded, shutting down).
  // The agent id and type must already be valid; `data` is a raw JSON object.
  void publish(std::string agent_id, std::string type, std::string data, std::string idempotency_key,
               PublishCallback done);
  // Queues a command for the writer thread; `done` as for publish, or `refused` with its reasons.
  void submit(std::string agent_id, Command command, std::string idempotency_key, PublishCallback done);

  // For event-loop threads. From this call on, publishes submitted on the calling thread do not wake the
  // writer one at a time: the first of a burst hands `wake` to `defer`, which runs it once the loop has
  // handled what is already ready (an event loop posts it behind those handlers). So all the requests
  // that arrived in one read, on every connection of the loop, share one commit instead of the writer
  // waking for the first and committing it alone, which on a shared core it does at once. An empty
  // `defer` restores waking at once.
  using WakeDeferrer = std::function<void(std::function<void()> wake)>;
  void defer_wakes_on_this_thread(WakeDeferrer defer);

  // Subscribes `sub` on `shard`; must be called on that shard's thread. With `since`, the events after
  // it are returned for replay when they are all still held (in memory or in the store, at most
  // max_stored_read_bytes read from the store) and the epoch matches. A channel not in memory is loaded
  // from the store or created, on the writer thread: the caller waits for it.
  JoinResult join(std::string_view agent_id, unsigned shard, Subscriber* sub,
                  const std::optional<Position>& since);
  // Unsubscribes; on the same shard thread as join. The channel may leave memory after this.
  void leave(Channel* channel, unsigned shard, Subscriber* sub);

  // Current state for a `snapshot` message: seq, epoch and the domain state, consistent with each other.
  struct Snapshot {
    std::uint64_t seq = 0;
    std::string epoch;
    std::string state_json;
  };
  Snapshot snapshot(Channel* channel);
  std::optional<Snapshot> snapshot(std::string_view agent_id);
  // Runs `read` on the channel's domain state (null without a state factory) under the channel's lock;
  // false when the channel does not exist. `read` must not call back into the hub.
  bool with_state(std::string_view agent_id, const std::function<void(const ChannelState*)>& read);

  HistoryPage history(std::string_view agent_id, std::uint64_t since, std::size_t limit);
  HubStats stats(std::size_t top);
  store::StoreStats store_stats() { return broker_.stats(); }
  // A cold state record (e.g. an ended stream's text) from the broker, on the writer thread when the
  // broker needs that; throws BrokerError (or the store's error) when it cannot be read.
  std::optional<std::string> load_cold_record(std::string_view agent_id, std::string_view kind,
                                              std::string_view id);
  bool durable() const noexcept { return broker_.durable(); }
  std::string_view broker_name() const noexcept { return broker_.name(); }
  std::vector<broker::InstanceHealth> broker_health() { return broker_.health(); }

  // With a shared broker (hub_directory.cpp): its directory, read on the writer. Each throws BrokerError
  // when the broker cannot be read. The agent whose channel `id` leads to (Broker::find_name), with that
  // channel in memory and its state as the broker has it; nullopt when the broker knows no such id.
  bool shared() const noexcept { return shared_; }
  std::optional<std::string> locate(std::string_view id);
  std::vector<broker::ListedChannel> listed_channels(std::string_view after, std::size_t limit);
  // Open ids idle since before `before_ms`, claimed for this node (Broker::claim_idle), their channels
  // in memory brought in step with the broker so that the expiries decide against its state.
  std::vector<broker::IdleName> claim_idle(std::int64_t before_ms, std::int64_t now_ms, std::size_t limit);

 private:
  struct Pending {
    std::function<void()> task;  // when set, not a publish: run_on_writer's work
    std::string agent_id;
    Command command;
    std::string idempotency_key;
    PublishCallback done;
    unsigned attempts = 0;  // decisions that met a state conflict (shared broker)
  };

  // In memory only; any thread.
  std::shared_ptr<Channel> find_channel(std::string_view agent_id);
  // Writer thread: the channel in memory, else loaded from the broker, else (with `create`) a new one
  // with a new epoch; null when neither. Throws BrokerError when the broker cannot be read.
  std::shared_ptr<Channel> channel_on_writer(std::string_view agent_id, bool create);
  std::shared_ptr<Channel> make_channel(std::string agent_id, std::string epoch, std::uint64_t last_seq);
  // The epoch of a channel the broker does not know. The same for one agent id for the life of the
  // process, so a channel that only had subscribers keeps its epoch when it leaves memory and returns.
  std::string new_epoch(std::string_view agent_id) const;
  // Runs `task` on the writer thread and waits for it (inline when called there, or when no writer runs).
  void run_on_writer(const std::function<void()>& task);
  // Under ch.mutex: fills `r` and subscribes. `stored` are the events after since->seq read from the
  // broker (null: not read); false when the replay needs them and they were not read.
  bool join_locked(Channel& ch, unsigned shard, Subscriber* sub, const std::optional<Position>& since,
                   const std::vector<EventPtr>* stored, JoinResult& r);
  // Writer thread: the broker's events of `ch` after `after`, before its first one in memory, at most
  // max_stored_read_bytes (and `limit`) of them.
  std::vector<EventPtr> read_stored(Channel& ch, std::uint64_t after, std::size_t limit);
  // Under ch.mutex: the page when memory can serve it.
  bool history_from_memory(Channel& ch, std::uint64_t since, std::size_t limit, HistoryPage& page);
  // Writer thread or start(): lets the channel go when nothing needs it in memory.
  bool evict_if_idle(const std::shared_ptr<Channel>& ch, std::int64_t now_ms);
  void evict_idle(std::int64_t now_ms);           // every channel
  void evict_left_channels(std::int64_t now_ms);  // those whose last subscriber left
  void enforce_memory_budget();                   // oldest events out of memory past the budget
  std::vector<std::shared_ptr<Channel>> all_channels();
  void writer_loop();

  // The writer's group commit, in its stages (hub_writer.cpp). One publish of a batch, and what became
  // of it.
  struct Outcome {
    enum class Kind {
      staged,
      refused,
      duplicate_of_history,
      duplicate_in_batch,
      unloadable,
      contended  // a refusal that the broker's state kept moving under
    } kind = Kind::staged;
    std::size_t draft = 0;  // staged, duplicate_in_batch: its draft in the broker batch
    std::uint64_t seq = 0;  // duplicate_of_history: the seq it had
    Decision decision;      // refused: the refusal; staged: the reply
  };
  // What one commit works on; kept by the writer and reused from batch to batch.
  struct Staging {
    broker::Batch batch;
    std::vector<Channel*> channels;  // index = batch.channels'; null: not in memory (shared broker only)
    std::unordered_map<std::string, std::size_t> absent;  // agent -> its slot, for those not in memory
    std::vector<Outcome> outcomes;                        // index = publish - first publish of the commit
    std::unordered_map<std::string, std::size_t> keys;    // agent \0 idempotency key -> draft
  };
  // Commits a prefix of `batch` starting at `from`; returns where the next commit starts.
  std::size_t commit_batch(std::vector<Pending>& batch, std::size_t from);
  // Stage 1: decides each publish from `from` on and drafts its event, until the batch ends, a writer
  // task comes, or a stateful command meets a channel already in the commit; returns where it stopped.
  std::size_t stage(std::vector<Pending>& batch, std::size_t from);
  // Stage 1, one publish: its channel's place in the commit, registered on first use.
  std::size_t batch_channel(Channel& ch);
  std::size_t absent_batch_channel(const std::string& agent_id);
  // Stage 2: the broker numbers and stores the drafts (or, with `sent`, finishes storing what
  // send_commit sent); the failure every staged publish gets, or ok.
  PublishResult store_staged(std::unique_ptr<broker::CommitTicket> sent = nullptr);
  // Stage 2 failed as a whole (the staged batch's drafts): logged and counted; the answer they all get.
  PublishResult nothing_stored(const broker::BrokerError& e);
  // With a broker that pipelines commits: a commit of plain publishes is sent (stage 2's first half)
  // and kept in flight while the writer finishes the one before it (stages 2-4), so the broker works on
  // one batch while the writer answers the last. Anything that needs the broker's state after every
  // commit (a stateful command, a writer task, eviction) finishes the one in flight first.
  struct InFlight {
    Staging staging;
    std::vector<Pending> pending;  // index = outcome
    std::unique_ptr<broker::CommitTicket> sent;
    std::optional<PublishResult> failure;  // could not be sent
  };
  void send_staged(std::vector<Pending>& batch, std::size_t from, std::size_t end);
  void finish_in_flight();
  // With a commit in flight and none queued: waits for its answer, or for publishes to send behind it
  // (false), whichever comes first.
  bool await_in_flight();
  // True when the publishes from `from` to the next writer task are all plain (no stateful command).
  static bool plain_run(const std::vector<Pending>& batch, std::size_t from);
  // Stage 3: each event into its channel's history and state, then posted to the shards.
  void record_staged();
  // Stage 4: each publish's `done`, in order; a command whose draft met a state conflict is kept for
  // deciding again (conflicted_) instead.
  void answer(std::vector<Pending>& batch, std::size_t from, const PublishResult& failure);
  // After stage 4: the conflicted commands' channels brought in step with the broker, then the
  // commands decided and committed again (each at most max_decide_attempts times in all).
  void decide_conflicted_again();
  // Writer thread, shared broker: the channel's state (and a live channel's events) brought in step
  // with the broker's; true when the state moved. Throws BrokerError when the broker cannot be read.
  bool sync_channel(Channel& ch);
  // The answer to a command decided max_decide_attempts times without its state holding still.
  PublishResult contended(const Pending& p);
  // A committed event on its way to the subscribers of one shard.
  struct Delivery {
    std::shared_ptr<Channel> channel;
    EventPtr event;  // null: a gap, the events up to gap_to are lost
    std::uint64_t gap_to = 0;
  };
  using ShardDeliveries = std::vector<std::vector<Delivery>>;  // index = shard
  // Appends a committed event to its channel's history and state, and lists it for every shard where
  // the channel has subscribers.
  void record(Channel& ch, const EventPtr& event, const std::vector<store::StateRecord>& records,
              ShardDeliveries& deliveries);
  void record_locked(Channel& ch, const EventPtr& event, const std::vector<store::StateRecord>& records,
                     ShardDeliveries& deliveries);  // the same, under ch.mutex
  // One task per shard hands it everything listed for it.
  void post_deliveries(ShardDeliveries& deliveries);

  // With a shared broker (hub_sync.cpp): events and resubscriptions from the broker's thread, queued
  // for the writer.
  void on_events(std::string agent_id, std::vector<EventPtr> events,
                 std::vector<broker::StateChange> changes) override;
  void on_resubscribed(std::string agent_id) override;
  // Writer thread: what the broker told since the last look.
  void take_inbound();
  // Writer thread: `ev` (the channel's next or later event) recorded with its state records and the
  // state version after it, after any events it missed read from the broker with the state they made;
  // older ones are dropped.
  void record_in_order(Channel& ch, const EventPtr& ev, const std::vector<store::StateRecord>& records,
                       std::uint64_t state_version, ShardDeliveries& deliveries);
  // Writer thread: a committed event of a channel in memory (live or not).
  void record_shared(Channel& ch, const std::string& epoch, const broker::Draft& d,
                     ShardDeliveries& deliveries);
  // Writer thread: records the events the broker has after the channel's last one and before
  // `before_seq`; false when the broker could not be read.
  bool catch_up(Channel& ch, std::uint64_t before_seq, ShardDeliveries& deliveries);
  // Writer thread: a live channel's events recorded up to the broker's position and its state replaced
  // by the broker's when the version moved; false when the broker could not be read.
  bool resync(Channel& ch, ShardDeliveries& deliveries);
  // Writer thread: the state read from the broker (when `vs.changed`) becomes the channel's.
  void adopt_state(Channel& ch, broker::VersionedState& vs);
  // Writer thread: catches up the channels whose catch-up failed, again.
  void retry_behind();
  // Writer thread, under ch.mutex: the broker lost the events before `next_seq`; the history starts
  // over and the subscribers that miss them are told (Subscriber::history_lost).
  void history_gap_locked(Channel& ch, std::uint64_t next_seq, ShardDeliveries& deliveries);
  // Writer thread: a channel not live takes the broker's epoch, position and state (when its version
  // moved) and an empty history. Throws BrokerError when the broker cannot be read.
  void refresh_or_throw(Channel& ch);
  void refresh(Channel& ch);  // the same, logging a failure
  // Writer thread: watched, in step, live (before its first local subscriber counts).
  void make_live(Channel& ch);
  // Writer thread: unwatched and emptied (after its last local subscriber left).
  void let_go_live(Channel& ch);
  void prune(std::int64_t now_ms);
  std::string state_of(Channel& ch) const;  // under ch.mutex

  HubOptions options_;
  broker::Broker& broker_;
  ShardDispatcher& shards_;
  ChannelStateFactory state_factory_;
  const std::string epoch_salt_;  // random per process: a new history never reuses an old epoch

  std::mutex channels_mutex_;
  FlatStringMap<std::shared_ptr<Channel>> channels_;  // looked up by string_view on every publish
  std::atomic<std::uint64_t> history_bytes_{0};       // sum of the rings' bytes; changed by the writer

  std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  bool writer_running_ = false;
  std::vector<std::string> left_;  // channels whose last subscriber left, for the writer to look at
  struct Inbound {
    std::string agent_id;
    std::vector<EventPtr> events;              // empty: resubscribed, catch up
    std::vector<broker::StateChange> changes;  // one per event
  };
  std::vector<Inbound> inbound_;     // from a shared broker, for the writer
  std::vector<Pending> conflicted_;  // writer thread: commands to decide again
  const bool shared_;                // the broker numbers for many nodes
  std::vector<std::string> behind_;  // writer thread: live channels that could not catch up yet
  std::thread writer_;
  Staging staging_;                    // writer thread only
  std::optional<InFlight> in_flight_;  // writer thread only

  std::atomic<std::uint64_t> publishes_{0};
  std::atomic<std::uint64_t> publish_failures_{0};
  std::atomic<std::uint64_t> state_conflicts_{0};
};

}  // namespace aw::hub
