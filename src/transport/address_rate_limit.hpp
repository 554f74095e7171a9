// A rate limit per client address (an IPv4 address or IPv6 /64, as ConnectionGate::client_key counts
// them): one token bucket each, for WebSocket handshakes (--max-handshakes-per-ip-per-s) and HTTP requests
// (--max-requests-per-ip-per-s). The table is bounded twice: an address whose bucket has filled up again
// is forgotten (a full bucket is what a new address gets anyway) at a sweep once per refill time, and
// the table never holds more than --rate-limit-max-addresses; while it is full of addresses that are
// all still limited, a new address is refused too (refusing is what keeps the bound).
#pragma once
#include <atomic>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "core/token_bucket.hpp"

namespace aw::transport {

class AddressRateLimit {
 public:
  struct Verdict {
    bool allowed = true;
    std::int64_t retry_after_s = 0;  // when refused: whole seconds until a retry can succeed (at least 1)
  };

  // `per_s` 0: no limit (take() always allows and keeps nothing). `limit_loopback` false: loopback
  // peers (a proxy or tools on the same host, for which one address is every user) are not limited.
  // `addresses` counts the addresses held (a gauge several tables may share).
  AddressRateLimit(RateRule rule, std::size_t max_addresses, bool limit_loopback,
                   std::atomic<std::uint64_t>& addresses);
  ~AddressRateLimit();

  bool limits() const noexcept { return rule_.limits(); }
  // One action of `peer` at `now_ms` (steady clock). Any thread.
  Verdict take(const boost::asio::ip::address& peer, std::int64_t now_ms);
  Verdict take(std::uint64_t client, std::int64_t now_ms);
  // Addresses held now.
  std::size_t tracked();

 private:
  // Forgets the addresses whose buckets are full again. Under the lock.
  void sweep(std::int64_t now_ms);
  // The gauge follows buckets_.size(). Under the lock.
  void count(std::size_t before);

  const RateRule rule_;
  const std::size_t max_addresses_;
  const bool limit_loopback_;
  // The refill time, at least a second: how often the table is swept.
  const std::int64_t sweep_every_ms_;
  std::mutex mutex_;  // guards buckets_ and next_sweep_ms_
  std::unordered_map<std::uint64_t, TokenBucket> buckets_;
  std::int64_t next_sweep_ms_ = 0;
  std::atomic<std::uint64_t>& addresses_;
};

}  // namespace aw::transport
