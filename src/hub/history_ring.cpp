#include "hub/history_ring.hpp"

namespace aw::hub {

void HistoryRing::push(EventPtr ev) {
  if (capacity_ == 0) return;
  if (!slots_.empty() && ev->seq != first_seq_ + slots_.size()) {
    // A hole would make seq arithmetic lie; start over from this event.
    while (!slots_.empty()) pop_front();
  }
  if (slots_.empty()) first_seq_ = ev->seq;
  bytes_ += ev->frame().size();
  if (!ev->idempotency_key.empty()) keys_[ev->idempotency_key] = ev->seq;
  const std::int64_t ts = ev->ts_ms;
  slots_.push_back({std::move(ev), ts});
  while (slots_.size() > capacity_) pop_front();
  while (bytes_ > max_bytes_ && held() > 0) release_oldest();
}

void HistoryRing::expire(std::int64_t now_ms) {
  while (!slots_.empty() && slots_.front().ts_ms < now_ms - ttl_ms_) pop_front();
}

std::uint64_t HistoryRing::release_oldest() {
  if (held() == 0) return 0;
  Slot& slot = slots_[released_];
  const std::uint64_t freed = slot.event->frame().size();
  if (!slot.event->idempotency_key.empty()) stub_keys_.emplace(slot.event->seq, slot.event->idempotency_key);
  slot.event.reset();
  ++released_;
  bytes_ -= freed;
  return freed;
}

std::optional<std::int64_t> HistoryRing::oldest_held_ts() const {
  if (held() == 0) return std::nullopt;
  return slots_[released_].ts_ms;
}

std::optional<std::vector<EventPtr>> HistoryRing::since(std::uint64_t since, std::uint64_t latest,
                                                        std::size_t limit) const {
  if (since > latest) return std::nullopt;
  std::vector<EventPtr> out;
  if (since == latest) return out;
  if (held() == 0 || first_held_seq() > since + 1 || first_seq_ + slots_.size() - 1 != latest)
    return std::nullopt;
  std::size_t start = static_cast<std::size_t>(since + 1 - first_seq_);
  std::size_t n = std::min(limit, slots_.size() - start);
  out.reserve(n);
  for (std::size_t i = start; i < start + n; ++i) out.push_back(slots_[i].event);
  return out;
}

std::optional<std::uint64_t> HistoryRing::seq_for_key(const std::string& key) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

void HistoryRing::pop_front() {
  const Slot& slot = slots_.front();
  const std::uint64_t seq = first_seq_;
  auto forget_key = [&](const std::string& key) {
    auto it = keys_.find(key);
    if (it != keys_.end() && it->second == seq) keys_.erase(it);
  };
  if (slot.event) {
    bytes_ -= slot.event->frame().size();
    if (!slot.event->idempotency_key.empty()) forget_key(slot.event->idempotency_key);
  } else {
    --released_;
    if (auto it = stub_keys_.find(seq); it != stub_keys_.end()) {
      forget_key(it->second);
      stub_keys_.erase(it);
    }
  }
  slots_.pop_front();
  ++first_seq_;
}

}  // namespace aw::hub
