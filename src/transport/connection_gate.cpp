#include "transport/connection_gate.hpp"

#include <utility>

namespace aw::transport {

ConnectionSlot& ConnectionSlot::operator=(ConnectionSlot&& o) noexcept {
  if (this != &o) {
    release();
    gate_ = std::exchange(o.gate_, nullptr);
    client_ = o.client_;
  }
  return *this;
}

void ConnectionSlot::release() noexcept {
  if (auto* gate = std::exchange(gate_, nullptr)) gate->release(client_);
}

void ConnectionGate::set_limits(std::uint64_t max_total, std::uint64_t max_per_ip) {
  max_total_ = max_total;
  max_per_ip_ = max_per_ip;
  counters_.connections_max.store(max_total, std::memory_order_relaxed);
}

std::uint64_t ConnectionGate::client_key(const boost::asio::ip::address& peer) noexcept {
  if (peer.is_v4()) return peer.to_v4().to_uint();
  auto v6 = peer.to_v6();
  if (v6.is_v4_mapped()) return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, v6).to_uint();
  auto bytes = v6.to_bytes();
  std::uint64_t prefix = 0;
  for (int i = 0; i < 8; ++i) prefix = (prefix << 8) | bytes[static_cast<std::size_t>(i)];
  // An IPv4 key fits in 32 bits; the few /64s that would too (under ::/32) are set apart.
  return prefix < (1ULL << 32) ? prefix | (1ULL << 63) : prefix;
}

ConnectionGate::Verdict ConnectionGate::admit(const boost::asio::ip::address& peer, ConnectionSlot& slot) {
  auto& open = counters_.connections_open;
  if (open.load(std::memory_order_relaxed) >= max_total_) {
    counters_.connections_refused_max.fetch_add(1, std::memory_order_relaxed);
    return Verdict::over_max;
  }
  std::uint64_t client = client_key(peer);
  if (max_per_ip_ != 0) {
    std::lock_guard lock(mutex_);
    std::uint32_t& n = per_client_[client];
    if (n >= max_per_ip_) {
      counters_.connections_refused_per_ip.fetch_add(1, std::memory_order_relaxed);
      return Verdict::over_per_ip;
    }
    ++n;
  }
  open.fetch_add(1, std::memory_order_relaxed);
  slot = ConnectionSlot(this, client);
  return Verdict::admitted;
}

void ConnectionGate::release(std::uint64_t client) noexcept {
  counters_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  if (max_per_ip_ == 0) return;
  std::lock_guard lock(mutex_);
  auto it = per_client_.find(client);
  if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
}

}  // namespace aw::transport
