// The connection limits: the global and per-address counts, slots given back once, IPv6 by /64, and
// --max-connections lowered to what the descriptor limit leaves.
#include "transport/connection_gate.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "transport/server.hpp"

namespace aw::transport {
using metrics::Counters;
namespace {

using boost::asio::ip::make_address;
using Verdict = ConnectionGate::Verdict;

TEST(ConnectionGate, CountsGloballyAndPerAddress) {
  Counters counters(1);
  ConnectionGate gate(counters);
  gate.set_limits(3, 2);
  std::vector<ConnectionSlot> held(4);
  EXPECT_EQ(gate.admit(make_address("10.0.0.1"), held[0]), Verdict::admitted);
  EXPECT_EQ(gate.admit(make_address("10.0.0.1"), held[1]), Verdict::admitted);
  EXPECT_EQ(gate.admit(make_address("::ffff:10.0.0.1"), held[2]), Verdict::over_per_ip);  // the same client
  EXPECT_FALSE(held[2]);
  EXPECT_EQ(gate.admit(make_address("10.0.0.2"), held[2]), Verdict::admitted);
  EXPECT_EQ(gate.admit(make_address("10.0.0.3"), held[3]), Verdict::over_max);
  EXPECT_EQ(counters.connections_open.load(), 3u);
  EXPECT_EQ(counters.connections_refused_max.load(), 1u);
  EXPECT_EQ(counters.connections_refused_per_ip.load(), 1u);
  EXPECT_EQ(counters.connections_max.load(), 3u);

  ConnectionSlot moved = std::move(held[0]);  // a slot changes hands, still counted once
  EXPECT_EQ(counters.connections_open.load(), 3u);
  held.clear();
  EXPECT_EQ(counters.connections_open.load(), 1u);
  moved = ConnectionSlot();
  EXPECT_EQ(counters.connections_open.load(), 0u);
  ConnectionSlot again;
  EXPECT_EQ(gate.admit(make_address("10.0.0.1"), again), Verdict::admitted);
}

TEST(ConnectionGate, ZeroPerAddressMeansNoLimit) {
  Counters counters(1);
  ConnectionGate gate(counters);
  gate.set_limits(100, 0);
  std::vector<ConnectionSlot> held(50);
  for (auto& s : held) EXPECT_EQ(gate.admit(make_address("127.0.0.1"), s), Verdict::admitted);
  EXPECT_EQ(counters.connections_open.load(), 50u);
}

TEST(ConnectionGate, ClientsAreIpv4AddressesOrIpv6Slash64s) {
  auto key = [](const char* a) { return ConnectionGate::client_key(make_address(a)); };
  EXPECT_EQ(key("2001:db8::1"), key("2001:db8::ffff:1"));
  EXPECT_NE(key("2001:db8::1"), key("2001:db8:0:1::1"));
  EXPECT_EQ(key("192.0.2.7"), key("::ffff:192.0.2.7"));
  EXPECT_NE(key("192.0.2.7"), key("192.0.2.8"));
  EXPECT_NE(key("0.0.0.1"), key("0:1::"));  // a /64 under ::/32 is not taken for an IPv4 address
}

TEST(ConnectionLimits, LoweredToTheDescriptorLimitLessAReserve) {
  EXPECT_EQ(Server::effective_max_connections(100'000, UINT64_MAX), 100'000u);
  EXPECT_EQ(Server::effective_max_connections(100'000, 1'048'576), 100'000u);
  EXPECT_EQ(Server::effective_max_connections(100'000, 20'000), 20'000u - 128);
  EXPECT_EQ(Server::effective_max_connections(100'000, 1024), 1024u - 128);
  EXPECT_EQ(Server::effective_max_connections(100'000, 256), 256u - 64);
  EXPECT_EQ(Server::effective_max_connections(100'000, 64), 64u - 32);
  EXPECT_EQ(Server::effective_max_connections(100'000, 10), 1u);
  EXPECT_EQ(Server::effective_max_connections(5, 1024), 5u);
}

}  // namespace
}  // namespace aw::transport
