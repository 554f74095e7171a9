// A connection's pending wait lives in the connection's OpMemory: the wait a WebSocket session keeps
// pending for as long as it is idle fits there (no heap block of whatever size Asio's cache had), the
// memory is free again before the handler runs, and a second operation at once goes to the heap. These
// hold on any platform whose wait fits OpMemory's room; the bytes an idle connection costs depend on
// the arch, libstdc++, Boost and the allocator, so they are a benchmark figure (`agentwire-bench idle`,
// docs/performance.md), not an assertion here.
#include "transport/op_memory.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <memory>

namespace aw::transport {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
// The socket type of CorkedSocket, whose waits the session binds to its OpMemory.
using Socket = net::basic_stream_socket<tcp, net::io_context::executor_type>;

struct Connected {
  net::io_context ioc{1};
  Socket server{ioc};
  tcp::socket client{ioc};

  Connected() {
    tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    server = Socket(acceptor.accept(ioc.get_executor()));
  }
};

TEST(OpMemory, AnIdleConnectionsReadWaitLivesInIt) {
  Connected c;
  // Like the session's handler, this one holds one shared_ptr and nothing else.
  struct Session {
    OpMemory memory;
    bool ran = false;
    bool free_when_run = false;
  };
  auto session = std::make_shared<Session>();
  c.server.async_wait(tcp::socket::wait_read, in(session->memory, [session](boost::system::error_code ec) {
                        EXPECT_FALSE(ec);
                        session->ran = true;
                        session->free_when_run = !session->memory.in_use();
                      }));
  EXPECT_TRUE(session->memory.in_use())
      << "the idle wait went to the heap: OpMemory's room is smaller than this platform's wait operation";
  c.ioc.poll();
  EXPECT_FALSE(session->ran);  // nothing to read yet: still pending, still in place

  net::write(c.client, net::buffer("x", 1));
  c.ioc.run_one();
  EXPECT_TRUE(session->ran);
  EXPECT_TRUE(session->free_when_run);
  EXPECT_FALSE(session->memory.in_use());
}

TEST(OpMemory, ASecondOperationAtOnceGoesToTheHeap) {
  Connected c;
  OpMemory memory;
  int completed = 0;
  c.server.async_wait(tcp::socket::wait_read, in(memory, [&](boost::system::error_code) { ++completed; }));
  ASSERT_TRUE(memory.in_use());
  c.server.async_wait(tcp::socket::wait_write, in(memory, [&](boost::system::error_code ec) {
                        EXPECT_FALSE(ec);
                        ++completed;
                        EXPECT_TRUE(memory.in_use());  // the read wait still holds the storage
                      }));
  c.ioc.run_one();  // writable at once
  EXPECT_EQ(completed, 1);
  c.server.close();  // the read wait completes with operation_aborted and gives the storage back
  c.ioc.run_one();
  EXPECT_EQ(completed, 2);
  EXPECT_FALSE(memory.in_use());
}

TEST(OpMemory, PendingWaitsDestroyedWithTheLoopGiveTheStorageBack) {
  OpMemory memory;
  {
    Connected c;
    c.server.async_wait(tcp::socket::wait_read, in(memory, [](boost::system::error_code) {}));
    EXPECT_TRUE(memory.in_use());
  }  // the io_context destroys the operation without running it
  EXPECT_FALSE(memory.in_use());
}

}  // namespace
}  // namespace aw::transport
