#include "broker/store_broker.hpp"

#include "protocol/envelope.hpp"

namespace aw::broker {
using store::StoredEvent;
using store::StoreError;
namespace {

BrokerError broker_error(const StoreError& e) {
  return BrokerError(e.what(), e.full() ? BrokerError::Kind::full : BrokerError::Kind::failed);
}

EventPtr event_from(StoredEvent&& se) {
  return protocol::make_event(se.agent_id, se.seq, se.type, se.ts_ms, se.data, std::move(se.idempotency_key));
}

ChannelPosition position_of(store::StoredChannel&& sc) {
  return {std::move(sc.agent_id), std::move(sc.epoch), sc.last_seq};
}

}  // namespace

StoreBroker::StoreBroker(store::EventStore& store, std::string name)
    : store_(store), name_(std::move(name)) {}

std::vector<ChannelPosition> StoreBroker::load_channels() {
  std::vector<ChannelPosition> out;
  try {
    for (auto& sc : store_.load_channels()) out.push_back(position_of(std::move(sc)));
  } catch (const StoreError& e) {
    throw broker_error(e);
  }
  return out;
}

void StoreBroker::load_recent(std::int64_t min_ts_ms,
                              const std::function<void(std::string_view agent_id, EventPtr event)>& visit) {
  try {
    store_.load_events(min_ts_ms, [&](StoredEvent&& se) {
      std::string agent_id = se.agent_id;
      visit(agent_id, event_from(std::move(se)));
    });
  } catch (const StoreError& e) {
    throw broker_error(e);
  }
}

std::optional<ChannelPosition> StoreBroker::find_channel(std::string_view agent_id) {
  try {
    if (auto sc = store_.find_channel(agent_id)) return position_of(std::move(*sc));
  } catch (const StoreError& e) {
    throw broker_error(e);
  }
  return std::nullopt;
}

void StoreBroker::replay(std::string_view agent_id, std::uint64_t after_seq,
                         const std::function<bool(EventPtr event)>& visit) {
  try {
    store_.load_channel_events(agent_id, after_seq,
                               [&](StoredEvent&& se) { return visit(event_from(std::move(se))); });
  } catch (const StoreError& e) {
    throw broker_error(e);
  }
}

std::vector<store::StateRecord> StoreBroker::load_state(std::string_view agent_id) {
  try {
    return store_.load_state(agent_id);
  } catch (const StoreError& e) {
    throw broker_error(e);
  }
}

void StoreBroker::commit(Batch& batch) {
  new_channels_.clear();
  events_.clear();
  records_.clear();
  // Numbered on copies of the positions: a failed commit leaves the batch's channels as they were.
  std::vector<std::uint64_t> last(batch.channels.size());
  for (std::size_t i = 0; i < batch.channels.size(); ++i) {
    const BatchChannel& c = batch.channels[i];
    last[i] = c.last_seq;
    if (!c.registered) new_channels_.push_back({c.agent_id, c.epoch, 0});
  }
  events_.reserve(batch.drafts.size());
  for (Draft& d : batch.drafts) {
    const std::uint64_t seq = ++last[d.channel];
    d.event = protocol::make_event(batch.channels[d.channel].agent_id, seq, d.type, batch.ts_ms, d.data,
                                   std::move(d.idempotency_key), d.mergeable);
    events_.push_back(d.event.get());
    for (const auto& r : d.records) records_.push_back(&r);
  }
  try {
    store_.append(new_channels_, events_, records_);
  } catch (const StoreError& e) {
    throw broker_error(e);
  }
  for (std::size_t i = 0; i < batch.channels.size(); ++i) {
    batch.channels[i].last_seq = last[i];
    batch.channels[i].registered = true;
  }
}

void StoreBroker::trim(std::size_t keep_per_channel, std::int64_t min_ts_ms) {
  try {
    store_.prune(keep_per_channel, min_ts_ms);
  } catch (const StoreError& e) {
    throw broker_error(e);
  }
}

}  // namespace aw::broker
