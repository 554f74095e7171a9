#include "metrics/lag_board.hpp"

#include <algorithm>

namespace aw::metrics {

void LagBoard::publish(unsigned shard, std::vector<SubscriberLag> worst) {
  std::lock_guard lock(mutex_);
  per_shard_[shard] = std::move(worst);
}

std::vector<SubscriberLag> LagBoard::top(std::size_t n) const {
  std::vector<SubscriberLag> all;
  {
    std::lock_guard lock(mutex_);
    for (const auto& v : per_shard_) all.insert(all.end(), v.begin(), v.end());
  }
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.queued_bytes > b.queued_bytes; });
  if (all.size() > n) all.resize(n);
  return all;
}

}  // namespace aw::metrics
