#include "transport/address_rate_limit.hpp"

#include <algorithm>

#include "transport/connection_gate.hpp"

namespace aw::transport {

AddressRateLimit::AddressRateLimit(RateRule rule, std::size_t max_addresses, bool limit_loopback,
                                   std::atomic<std::uint64_t>& addresses)
    : rule_(rule),
      max_addresses_(max_addresses),
      limit_loopback_(limit_loopback),
      sweep_every_ms_(std::max<std::int64_t>(rule.refill_ms(), 1000)),
      addresses_(addresses) {}

AddressRateLimit::~AddressRateLimit() {
  std::lock_guard lock(mutex_);
  addresses_.fetch_sub(buckets_.size(), std::memory_order_relaxed);
}

std::size_t AddressRateLimit::tracked() {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

void AddressRateLimit::count(std::size_t before) {
  const std::size_t now = buckets_.size();
  if (now > before) addresses_.fetch_add(now - before, std::memory_order_relaxed);
  if (now < before) addresses_.fetch_sub(before - now, std::memory_order_relaxed);
}

AddressRateLimit::Verdict AddressRateLimit::take(const boost::asio::ip::address& peer, std::int64_t now_ms) {
  if (!rule_.limits()) return {};
  if (!limit_loopback_) {
    bool loopback = peer.is_loopback();
    if (peer.is_v6() && peer.to_v6().is_v4_mapped())
      loopback = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, peer.to_v6()).is_loopback();
    if (loopback) return {};
  }
  return take(ConnectionGate::client_key(peer), now_ms);
}

AddressRateLimit::Verdict AddressRateLimit::take(std::uint64_t client, std::int64_t now_ms) {
  if (!rule_.limits()) return {};
  std::lock_guard lock(mutex_);
  if (now_ms >= next_sweep_ms_) {
    sweep(now_ms);
    next_sweep_ms_ = now_ms + sweep_every_ms_;
  }
  auto it = buckets_.find(client);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_addresses_) {
      // Every address held is still being limited: a new one waits for the next sweep.
      return {false, std::max<std::int64_t>(1, (next_sweep_ms_ - now_ms + 999) / 1000)};
    }
    it = buckets_.emplace(client, TokenBucket{}).first;
    addresses_.fetch_add(1, std::memory_order_relaxed);
  }
  if (it->second.take(rule_, now_ms)) return {};
  return {false, std::max<std::int64_t>(1, (it->second.ms_until_token(rule_, now_ms) + 999) / 1000)};
}

void AddressRateLimit::sweep(std::int64_t now_ms) {
  const std::size_t before = buckets_.size();
  std::erase_if(buckets_, [&](const auto& entry) { return entry.second.full(rule_, now_ms); });
  count(before);
  // A table emptied after a flood of addresses gives its bucket array back too.
  if (buckets_.bucket_count() > 4 * (buckets_.size() + 64)) buckets_.rehash(0);
}

}  // namespace aw::transport
