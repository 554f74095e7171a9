#include "hub/history_ring.hpp"

namespace aw {

void HistoryRing::push(EventPtr ev) {
  if (capacity_ == 0) return;
  if (!events_.empty() && ev->seq != events_.back()->seq + 1) {
    // A hole would make seq arithmetic lie; start over from this event.
    while (!events_.empty()) pop_front();
  }
  bytes_ += ev->frame().size();
  if (!ev->idempotency_key.empty()) keys_[ev->idempotency_key] = ev->seq;
  events_.push_back(std::move(ev));
  while (events_.size() > capacity_) pop_front();
}

void HistoryRing::expire(std::int64_t now_ms) {
  while (!events_.empty() && events_.front()->ts_ms < now_ms - ttl_ms_) pop_front();
}

std::optional<std::vector<EventPtr>> HistoryRing::since(std::uint64_t since, std::uint64_t latest,
                                                         std::size_t limit) const {
  if (since > latest) return std::nullopt;
  std::vector<EventPtr> out;
  if (since == latest) return out;
  if (events_.empty() || events_.front()->seq > since + 1 || events_.back()->seq != latest) return std::nullopt;
  std::size_t start = static_cast<std::size_t>(since + 1 - events_.front()->seq);
  std::size_t n = std::min(limit, events_.size() - start);
  out.reserve(n);
  for (std::size_t i = start; i < start + n; ++i) out.push_back(events_[i]);
  return out;
}

std::optional<std::uint64_t> HistoryRing::seq_for_key(const std::string& key) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

void HistoryRing::pop_front() {
  const auto& ev = events_.front();
  bytes_ -= ev->frame().size();
  if (!ev->idempotency_key.empty()) {
    auto it = keys_.find(ev->idempotency_key);
    if (it != keys_.end() && it->second == ev->seq) keys_.erase(it);
  }
  events_.pop_front();
}

}  // namespace aw
