// The corked socket over a real loopback connection: order and completeness of what leaves, the
// backlog when the peer stops reading (what merging and the slow-consumer policy build on), and FIN
// only after everything queued has left.
#include "transport/corked_socket.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/read.hpp>
#include <string>
#include <thread>

namespace aw::transport {
namespace {

struct Pair {
  net::io_context ioc{1};
  // poll() with nothing outstanding would stop the io_context for good.
  net::executor_work_guard<net::io_context::executor_type> work = net::make_work_guard(ioc);
  tcp::socket peer{ioc};  // the "client"
  std::unique_ptr<CorkedSocket> corked;
  std::shared_ptr<int> owner = std::make_shared<int>(0);

  explicit Pair(int peer_rcvbuf = 0) {
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    peer.open(tcp::v4());
    if (peer_rcvbuf > 0) peer.set_option(net::socket_base::receive_buffer_size(peer_rcvbuf));
    peer.connect(acceptor.local_endpoint());
    tcp::socket server(ioc);
    acceptor.accept(server);
    corked = std::make_unique<CorkedSocket>(std::move(server), ioc);
    corked->set_owner(owner);
  }

  void enqueue(const std::string& s, bool droppable = true, std::uint64_t seq = 0) {
    auto keep = std::make_shared<const std::string>(s);
    std::string_view bytes(*keep);
    corked->enqueue(std::move(keep), bytes, droppable, seq);
  }

  std::string read_exactly(std::size_t n) {
    std::string out(n, '\0');
    net::read(peer, net::buffer(out));
    return out;
  }
};

TEST(CorkedSocket, FramesQueuedInOnePassLeaveInOrder) {
  Pair p;
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    std::string frame = "frame-" + std::to_string(i) + ";";
    expected += frame;
    p.enqueue(frame);
  }
  EXPECT_EQ(p.corked->queued_bytes(), expected.size());
  p.ioc.poll();  // the end of the pass: one flush
  EXPECT_EQ(p.corked->queued_bytes(), 0u);
  EXPECT_EQ(p.read_exactly(expected.size()), expected);
}

TEST(CorkedSocket, KnowsWhetherASegmentOfAKindIsQueued) {
  Pair p(4096);
  auto enqueue = [&p](const std::string& s, std::uint8_t kind) {
    auto keep = std::make_shared<const std::string>(s);
    std::string_view bytes(*keep);
    p.corked->enqueue(std::move(keep), bytes, true, 0, nullptr, kind);
  };
  enqueue("first;", 0);
  EXPECT_FALSE(p.corked->holds(1));
  enqueue("a snapshot;", 1);
  EXPECT_TRUE(p.corked->holds(1));
  p.ioc.poll();  // the kernel takes these few bytes: it has left
  EXPECT_EQ(p.corked->queued_bytes(), 0u);
  EXPECT_FALSE(p.corked->holds(1));
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 200 && !p.corked->backlogged(); ++i) {
    enqueue(chunk, 0);
    p.ioc.poll();
  }
  ASSERT_TRUE(p.corked->backlogged());
  enqueue("another;", 2);
  EXPECT_TRUE(p.corked->holds(2));
  p.corked->drop_pending();  // what a slow-consumer close does: it is gone
  EXPECT_FALSE(p.corked->holds(2));
}

TEST(CorkedSocket, APeerThatStopsReadingLeavesABacklogThatCanBeMergedOrDropped) {
  Pair p(4096);
  const std::string chunk(64 * 1024, 'x');
  std::size_t queued_total = 0;
  // Far more than the kernel buffers for one connection.
  for (int i = 0; i < 200 && !p.corked->backlogged(); ++i) {
    p.enqueue(chunk, true, static_cast<std::uint64_t>(i + 1));
    queued_total += chunk.size();
    p.ioc.poll();
  }
  ASSERT_TRUE(p.corked->backlogged()) << "the kernel took everything";
  for (int i = 0; i < 3; ++i) p.enqueue("tail-" + std::to_string(i) + ";", true, 1000 + i);
  const std::size_t backlog = p.corked->queued_bytes();
  ASSERT_GT(backlog, 0u);

  // The last segment has not started to leave: it can be replaced (what merging does).
  const Segment* last = p.corked->unsent_back();
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(last->bytes, "tail-2;");
  auto merged = std::make_shared<const std::string>("merged-2;");
  p.corked->replace_back({merged, *merged, true, 0, 1002, nullptr});
  EXPECT_EQ(p.corked->queued_bytes(), backlog + 2);  // "tail-2;" became "merged-2;"
  auto [events, oldest] = p.corked->queued_events();
  EXPECT_GT(events, 0u);
  EXPECT_GT(oldest, 0u);

  // Dropping keeps a half-sent segment whole, so the byte stream stays valid.
  p.enqueue("kept;", false);
  p.corked->drop_pending();
  const std::size_t left = p.corked->queued_bytes();
  EXPECT_LT(left, backlog);
  EXPECT_GE(left, 5u);

  // The peer drains: what arrives ends with the undroppable segment, after whole chunks only.
  p.peer.non_blocking(false);
  timeval tv{10, 0};  // a bug must fail the test, not hang it
  setsockopt(p.peer.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    while (got.size() < 5 || got.compare(got.size() - 5, 5, "kept;") != 0) {
      ssize_t n = ::recv(p.peer.native_handle(), buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  });
  for (int i = 0; i < 2000 && p.corked->queued_bytes() > 0; ++i) p.ioc.run_for(std::chrono::milliseconds(5));
  reader.join();
  EXPECT_EQ(p.corked->queued_bytes(), 0u);
  ASSERT_GE(got.size(), 5u);
  EXPECT_FALSE(p.corked->failed());
  EXPECT_EQ(got.substr(got.size() - 5), "kept;");
  EXPECT_EQ((got.size() - 5) % chunk.size(), 0u) << "a chunk was cut short";
  EXPECT_EQ(got.find_first_not_of('x'), got.size() - 5);
  EXPECT_LE(got.size(), queued_total + 5);
}

TEST(CorkedSocket, FinOnlyAfterEverythingQueuedHasLeft) {
  Pair p;
  p.enqueue("last words");
  p.corked->shutdown_when_drained();
  p.ioc.poll();
  EXPECT_EQ(p.read_exactly(10), "last words");
  char c;
  boost::system::error_code ec;
  p.peer.read_some(net::buffer(&c, 1), ec);
  EXPECT_EQ(ec, net::error::eof);
}

}  // namespace
}  // namespace aw::transport
