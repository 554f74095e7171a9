// The connection limits: how many connections the server holds at once (--max-connections) and how
// many of them one client address may hold (--max-connections-per-ip). HTTP and WebSocket connections
// count alike, from accept to the end of the session that owns the socket: a descriptor is a
// descriptor. Admission runs on the acceptor's thread; a slot is given back from any shard's thread.
#pragma once
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "metrics/counters.hpp"

namespace aw::transport {

class ConnectionGate;

// One admitted connection's place under the limits; given back when destroyed.
class ConnectionSlot {
 public:
  ConnectionSlot() = default;
  ConnectionSlot(ConnectionSlot&& o) noexcept : gate_(std::exchange(o.gate_, nullptr)), client_(o.client_) {}
  ConnectionSlot& operator=(ConnectionSlot&& o) noexcept;
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;
  ~ConnectionSlot() { release(); }

  explicit operator bool() const noexcept { return gate_ != nullptr; }

 private:
  friend class ConnectionGate;
  ConnectionSlot(ConnectionGate* gate, std::uint64_t client) : gate_(gate), client_(client) {}
  void release() noexcept;

  ConnectionGate* gate_ = nullptr;
  std::uint64_t client_ = 0;  // see client_key
};

class ConnectionGate {
 public:
  enum class Verdict { admitted, over_max, over_per_ip };

  explicit ConnectionGate(metrics::Counters& counters) : counters_(counters) {}

  // Before the first admission. `max_per_ip` 0: no per-address limit.
  void set_limits(std::uint64_t max_total, std::uint64_t max_per_ip);
  std::uint64_t max_total() const noexcept { return max_total_; }

  // The acceptor's thread only (one admitter, so a check and its count cannot be overtaken). Counts
  // the refusal it returns.
  Verdict admit(const boost::asio::ip::address& peer, ConnectionSlot& slot);

  // What a client is counted as: an IPv4 address, or an IPv6 address's /64 (one subscriber's share of
  // addresses; a limit per IPv6 address would be no limit at all). IPv4-mapped IPv6 counts as IPv4.
  static std::uint64_t client_key(const boost::asio::ip::address& peer) noexcept;

 private:
  friend class ConnectionSlot;
  void release(std::uint64_t client) noexcept;

  metrics::Counters& counters_;
  std::uint64_t max_total_ = UINT64_MAX;
  std::uint64_t max_per_ip_ = 0;
  std::mutex mutex_;                                             // guards per_client_
  std::unordered_map<std::uint64_t, std::uint32_t> per_client_;  // only clients with a connection
};

}  // namespace aw::transport
