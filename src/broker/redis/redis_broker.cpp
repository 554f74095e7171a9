#include "broker/redis/redis_broker.hpp"

#include <boost/asio/post.hpp>
#include <charconv>
#include <deque>

#include "broker/redis/batch_script.hpp"
#include "broker/redis/event_codec.hpp"
#include "broker/redis/reply.hpp"
#include "core/log.hpp"
#include "protocol/envelope.hpp"

namespace aw::broker::redis {
namespace {

std::string key(std::string_view agent_id, std::string_view suffix) {
  std::string k = "aw:{";
  k.append(agent_id).append("}:").append(suffix);
  return k;
}

BrokerError malformed(const std::string& what) {
  return BrokerError("redis: unexpected answer: " + what, BrokerError::Kind::failed);
}

// One Stream entry (id "<seq>-0", field `e`: the event as the batch script encodes it) as an event;
// null when it is not one.
EventPtr event_of_entry(std::string_view agent_id, const redisReply* entry) {
  if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) return nullptr;
  const redisReply* fields = entry->element[1];
  if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 2 || reply_text(fields->element[0]) != "e")
    return nullptr;
  std::string_view encoded = reply_text(fields->element[1]);
  DecodedEvent decoded;
  if (!decode_event(agent_id, encoded, decoded) || !encoded.empty()) return nullptr;
  std::uint64_t seq = 0;
  std::string_view id = reply_text(entry->element[0]);
  if (!parse_number(id.substr(0, id.find('-')), seq) || seq != decoded.event->seq) return nullptr;
  return decoded.event;
}

// A state hash (HGETALL: field "<kind>\0<id>", value json) as records, cold ones excepted.
std::vector<store::StateRecord> state_records(std::string_view agent_id, const redisReply* r) {
  std::vector<store::StateRecord> out;
  for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
    std::string_view field = reply_text(r->element[i]);
    auto nul = field.find('\0');
    if (nul == std::string_view::npos) continue;
    std::string_view kind = field.substr(0, nul);
    if (!kind.empty() && kind.front() == store::kColdKindPrefix) continue;
    out.push_back({std::string(agent_id), std::string(kind), std::string(field.substr(nul + 1)),
                   std::string(reply_text(r->element[i + 1]))});
  }
  return out;
}

// 64-bit FNV-1a of an agent id, then Lamping and Veach's jump consistent hash: adding an instance
// moves only the channels that go to it.
std::size_t jump_hash(std::string_view agent_id, std::size_t buckets) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : agent_id) h = (h ^ c) * 1099511628211ULL;
  std::int64_t b = -1, j = 0;
  while (j < static_cast<std::int64_t>(buckets)) {
    b = j;
    h = h * 2862933555777941757ULL + 1;
    j = static_cast<std::int64_t>(static_cast<double>(b + 1) *
                                  (static_cast<double>(1LL << 31) / static_cast<double>((h >> 33) + 1)));
  }
  return static_cast<std::size_t>(b);
}

}  // namespace

RedisBroker::RedisBroker(RedisBrokerOptions options)
    : options_(std::move(options)), work_(io_.get_executor()), live_prefix_("aw:live:") {
  for (const Endpoint& e : options_.endpoints) {
    instances_.push_back(std::make_unique<RedisInstance>(e, options_.timeout));
    // pub/sub is not per database: the database number keeps two deployments on one Redis apart.
    links_.push_back(std::make_unique<LiveLink>(
        io_, e, live_prefix_ + std::to_string(e.db) + ":",
        LiveLink::Callbacks{
            [this](std::string_view agent, std::string_view payload) { on_message(agent, payload); },
            [this](const std::string& agent) {
              if (listener_ != nullptr) listener_->on_resubscribed(agent);
            }}));
  }
  for (auto& link : links_) boost::asio::post(io_, [l = link.get()] { l->start(); });
  thread_ = std::thread([this] { io_.run(); });
  for (auto& inst : instances_) {
    try {
      inst->command({"PING"});
    } catch (const BrokerError& e) {
      log::warn("broker_unreachable", {{"broker", inst->endpoint().name}, {"error", e.what()}});
    }
  }
}

RedisBroker::~RedisBroker() {
  std::promise<void> stopped;
  boost::asio::post(io_, [&] {
    for (auto& link : links_) link->stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

std::size_t RedisBroker::instance_of(std::string_view agent_id, std::size_t n) {
  return n <= 1 ? 0 : jump_hash(agent_id, n);
}

RedisInstance& RedisBroker::instance(std::string_view agent_id) {
  return *instances_[instance_of(agent_id, instances_.size())];
}

std::optional<ChannelPosition> RedisBroker::find_channel(std::string_view agent_id) {
  Reply r = instance(agent_id).command({"HMGET", key(agent_id, "meta"), "epoch", "seq"});
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) throw malformed("HMGET");
  if (r->element[0]->type != REDIS_REPLY_STRING) return std::nullopt;
  ChannelPosition pos{std::string(agent_id), std::string(reply_text(r->element[0])), 0};
  parse_number(reply_text(r->element[1]), pos.last_seq);
  return pos;
}

ChannelPosition RedisBroker::open_channel(std::string_view agent_id, const std::string& /*candidate_epoch*/) {
  if (auto pos = find_channel(agent_id)) return *pos;
  // Nothing is written: subscribers alone never grow Redis. Every node names the channel's history the
  // same until the first publish registers that name (the batch script's candidate is the same one).
  return {std::string(agent_id), epoch_for(agent_id), 0};
}

std::string RedisBroker::epoch_for(std::string_view agent_id) {
  const std::string& generation = instance(agent_id).generation();
  // FNV-1a over the generation and the id: a name, not a secret; a new generation gives new names.
  std::uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  };
  mix(generation);
  mix(std::string_view("\0", 1));
  mix(agent_id);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = kHex[h & 0xf];
  return out;
}

void RedisBroker::replay(std::string_view agent_id, std::uint64_t after_seq,
                         const std::function<bool(EventPtr event)>& visit) {
  RedisInstance& inst = instance(agent_id);
  const std::string stream = key(agent_id, "events");
  std::uint64_t cursor = after_seq;
  for (;;) {
    const std::string start = std::to_string(cursor + 1) + "-0";
    Reply r = inst.command({"XRANGE", stream, start, "+", "COUNT", "256"});
    if (r->type != REDIS_REPLY_ARRAY) throw malformed("XRANGE");
    for (std::size_t i = 0; i < r->elements; ++i) {
      EventPtr ev = event_of_entry(agent_id, r->element[i]);
      if (!ev) throw malformed("stream entry");
      cursor = ev->seq;
      if (!visit(std::move(ev))) return;
    }
    if (r->elements < 256) return;
  }
}

std::vector<store::StateRecord> RedisBroker::load_state(std::string_view agent_id) {
  Reply r = instance(agent_id).command({"HGETALL", key(agent_id, "state")});
  if (r->type != REDIS_REPLY_ARRAY) throw malformed("HGETALL");
  return state_records(agent_id, r.get());
}

std::optional<std::uint64_t> RedisBroker::seq_of_key(std::string_view agent_id, std::string_view key) {
  std::string k = "key:";
  k.append(key);
  Reply r = instance(agent_id).command({"GET", redis::key(agent_id, k)});
  std::uint64_t seq = 0;
  if (r->type != REDIS_REPLY_STRING || !parse_number(reply_text(r.get()), seq)) return std::nullopt;
  return seq;
}

VersionedState RedisBroker::load_versioned_state(std::string_view agent_id,
                                                 std::optional<std::uint64_t> known) {
  const std::string known_text = known ? std::to_string(*known) : std::string();
  Reply r = instance(agent_id).command({"EVAL", kLoadStateScript, "0", agent_id, known_text});
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) throw malformed("state script");
  VersionedState vs;
  vs.epoch = std::string(reply_text(r->element[0]));
  parse_number(reply_text(r->element[1]), vs.last_seq);
  parse_number(reply_text(r->element[2]), vs.version);
  const redisReply* state = r->element[3];
  vs.changed = state->type == REDIS_REPLY_ARRAY;
  if (vs.changed) vs.records = state_records(agent_id, state);
  return vs;
}

std::optional<std::string> RedisBroker::load_cold_record(std::string_view agent_id, std::string_view kind,
                                                         std::string_view id) {
  std::string field(kind);
  field.push_back('\0');
  field.append(id);
  Reply r = instance(agent_id).command({"HGET", key(agent_id, "state"), field});
  if (r->type == REDIS_REPLY_NIL) return std::nullopt;
  if (r->type != REDIS_REPLY_STRING) throw malformed("HGET");
  return std::string(r->str, r->len);
}

namespace {

// A batch sent and not answered yet: per instance it touches, its script run's arguments and ticket.
// The arguments point into the batch (unchanged until finished) and into `numbers`.
struct SentBatch final : CommitTicket {
  struct Part {
    std::size_t instance = 0;
    std::vector<std::size_t> channels;  // by index into batch.channels
    std::vector<std::string_view> args;
    std::uint64_t ticket = 0;
    std::optional<BrokerError> error;  // not sent
  };
  std::string now, maxlen, ttl;
  std::deque<std::string> numbers;                  // the argument strings made here (deque: they stay put)
  std::vector<std::vector<std::size_t>> drafts_of;  // per channel, its drafts in order
  std::vector<Part> parts;
};

}  // namespace

void RedisBroker::commit(Batch& batch) {
  finish_commit(batch, send_commit(batch));
}

std::unique_ptr<CommitTicket> RedisBroker::send_commit(Batch& batch) {
  directory_.write_added(batch);
  const std::size_t n = instances_.size();
  auto sent = std::make_unique<SentBatch>();
  // Which channels (by index) go to which instance, and each channel's drafts in order.
  std::vector<std::vector<std::size_t>> per_instance(n);
  for (std::size_t c = 0; c < batch.channels.size(); ++c)
    per_instance[instance_of(batch.channels[c].agent_id, n)].push_back(c);
  sent->drafts_of.resize(batch.channels.size());
  for (std::size_t d = 0; d < batch.drafts.size(); ++d) sent->drafts_of[batch.drafts[d].channel].push_back(d);

  sent->now = std::to_string(batch.ts_ms);
  sent->maxlen = std::to_string(options_.history_size);
  sent->ttl = std::to_string(options_.history_ttl_ms);
  auto& numbers = sent->numbers;
  for (std::size_t i = 0; i < n; ++i) {
    if (per_instance[i].empty()) continue;
    SentBatch::Part& part = sent->parts.emplace_back();
    part.instance = i;
    part.channels = std::move(per_instance[i]);
    numbers.push_back(live_prefix_ + std::to_string(instances_[i]->endpoint().db) + ":");
    const std::string_view prefix = numbers.back();
    numbers.push_back(std::to_string(part.channels.size()));
    part.args = {sent->now, sent->maxlen, sent->ttl, prefix, numbers.back()};
    try {
      for (std::size_t c : part.channels) {
        const BatchChannel& ch = batch.channels[c];
        // A channel's first publish registers the name every node gave it (epoch_for), whichever node
        // publishes; a registered one keeps its own (the script sets the epoch only once).
        std::string_view candidate = ch.epoch;
        if (!ch.registered) {
          numbers.push_back(epoch_for(ch.agent_id));
          candidate = numbers.back();
        }
        numbers.push_back(std::to_string(sent->drafts_of[c].size()));
        part.args.insert(part.args.end(), {ch.agent_id, candidate, numbers.back()});
        for (std::size_t d : sent->drafts_of[c]) {
          const Draft& dr = batch.drafts[d];
          numbers.push_back(dr.decided_at ? std::to_string(*dr.decided_at) : std::string());
          const std::string_view expect = numbers.back();
          const auto sent_records = std::count_if(dr.records.begin(), dr.records.end(), [](const auto& r) {
            return r.kind.empty() || r.kind.front() != store::kColdKindPrefix;
          });
          numbers.push_back(sent->now + (dr.mergeable ? " 1 " : " 0 ") + std::to_string(dr.type.size()) +
                            ' ' + std::to_string(dr.idempotency_key.size()) + ' ' +
                            std::to_string(dr.data.size()) + ' ' + std::to_string(sent_records));
          const std::string_view tail = numbers.back();
          numbers.push_back(std::to_string(dr.records.size()));
          part.args.insert(part.args.end(),
                           {dr.type, dr.data, dr.idempotency_key, tail, expect, numbers.back()});
          for (const auto& rec : dr.records) part.args.insert(part.args.end(), {rec.kind, rec.id, rec.json});
        }
      }
      part.ticket = instances_[i]->eval_send(kBatchScript, part.args);
    } catch (const BrokerError& e) {
      part.error = e;  // this instance's drafts fail; the others' may be stored
    }
  }
  return sent;
}

bool RedisBroker::commit_answered(const CommitTicket& ticket, std::chrono::microseconds wait) {
  for (const SentBatch::Part& part : static_cast<const SentBatch&>(ticket).parts) {
    if (!part.error && !instances_[part.instance]->answered(part.ticket, wait)) return false;
  }
  return true;
}

void RedisBroker::finish_commit(Batch& batch, std::unique_ptr<CommitTicket> ticket) {
  auto& sent = static_cast<SentBatch&>(*ticket);
  std::optional<BrokerError> failure;
  bool stored_any = false;
  for (SentBatch::Part& part : sent.parts) {
    RedisInstance& inst = *instances_[part.instance];
    Reply r;
    try {
      if (part.error) throw *part.error;
      r = inst.eval_take(part.ticket, kBatchScript, part.args);
    } catch (const BrokerError& e) {
      // Other instances' parts may be stored: each draft answers for itself.
      if (!failure) failure = e;
      for (std::size_t c : part.channels)
        for (std::size_t d : sent.drafts_of[c]) batch.drafts[d].failed = e.kind();
      continue;
    }
    stored_any = true;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != part.channels.size()) throw malformed("batch script");
    for (std::size_t k = 0; k < part.channels.size(); ++k) {
      const std::size_t c = part.channels[k];
      const std::vector<std::size_t>& drafts = sent.drafts_of[c];
      const redisReply* res = r->element[k];
      if (res->type != REDIS_REPLY_ARRAY || res->elements != 2 * drafts.size() + 1)
        throw malformed("channel");
      BatchChannel& ch = batch.channels[c];
      ch.epoch = std::string(reply_text(res->element[0]));
      ch.registered = true;
      for (std::size_t j = 0; j < drafts.size(); ++j) {
        Draft& dr = batch.drafts[drafts[j]];
        const long long v = res->element[2 * j + 1]->integer;
        dr.state_version = static_cast<std::uint64_t>(res->element[2 * j + 2]->integer);
        if (v == 0) {
          dr.conflict = true;
          continue;
        }
        if (v < 0) {
          dr.duplicate_of = static_cast<std::uint64_t>(-v);
          continue;
        }
        const auto seq = static_cast<std::uint64_t>(v);
        inst.figures().events.fetch_add(1, std::memory_order_relaxed);
        dr.event = protocol::make_event(ch.agent_id, seq, dr.type, batch.ts_ms, dr.data,
                                        std::move(dr.idempotency_key), dr.mergeable);
        ch.last_seq = std::max(ch.last_seq, seq);
      }
    }
  }
  directory_.write_stored(batch);
  // Nothing stored anywhere: the batch fails as a whole, as the embedded broker's does.
  if (failure && !stored_any) throw *failure;
}

void RedisBroker::set_listener(BrokerListener* listener) {
  // On the io thread, so that once this returns no callback is running into the old listener.
  std::promise<void> set;
  boost::asio::post(io_, [&] {
    listener_ = listener;
    set.set_value();
  });
  set.get_future().wait();
}

void RedisBroker::watch(std::string_view agent_id) {
  auto subscribed = std::make_shared<std::promise<void>>();
  auto done = subscribed->get_future();
  LiveLink* link = links_[instance_of(agent_id, links_.size())].get();
  boost::asio::post(io_,
                    [link, agent = std::string(agent_id), subscribed] { link->watch(agent, subscribed); });
  // Not confirmed in time: the link is slow or going down; its resubscription tells the hub later.
  done.wait_for(options_.timeout);
}

void RedisBroker::unwatch(std::string_view agent_id) {
  LiveLink* link = links_[instance_of(agent_id, links_.size())].get();
  boost::asio::post(io_, [link, agent = std::string(agent_id)] { link->unwatch(agent); });
}

std::vector<InstanceHealth> RedisBroker::health() {
  std::vector<InstanceHealth> out;
  for (std::size_t i = 0; i < instances_.size(); ++i) {
    const auto& f = instances_[i]->figures();
    const auto& live = links_[i]->figures();
    constexpr auto relaxed = std::memory_order_relaxed;
    out.push_back({instances_[i]->endpoint().name, links_[i]->up(), f.batches.load(relaxed),
                   f.events.load(relaxed), f.errors.load(relaxed),
                   f.reconnects.load(relaxed) + live.reconnects.load(relaxed), f.commit_us_sum.load(relaxed),
                   live.watched.load(relaxed), live.messages.load(relaxed), f.gaps_backfilled.load(relaxed)});
  }
  return out;
}

void RedisBroker::count_backfill(std::string_view agent_id) {
  instance(agent_id).figures().gaps_backfilled.fetch_add(1, std::memory_order_relaxed);
}

void RedisBroker::on_message(std::string_view agent_id, std::string_view payload) {
  std::vector<EventPtr> events;
  std::vector<StateChange> changes;
  while (!payload.empty()) {
    DecodedEvent decoded;
    if (!decode_event(agent_id, payload, decoded)) {
      log::error("broker_message_malformed", {{"agent_id", std::string(agent_id)}});
      return;
    }
    events.push_back(std::move(decoded.event));
    changes.push_back(std::move(decoded.change));
  }
  if (listener_ != nullptr && !events.empty())
    listener_->on_events(std::string(agent_id), std::move(events), std::move(changes));
}

}  // namespace aw::broker::redis
