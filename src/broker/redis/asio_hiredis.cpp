#include "broker/redis/asio_hiredis.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <memory>

namespace aw::broker::redis {
namespace {

namespace asio = boost::asio;
using Wait = asio::posix::stream_descriptor::wait_type;

// Held by shared_ptr in each pending wait, so a wait that completes after hiredis freed the context
// finds `ac` null instead of freed memory.
struct Watcher : std::enable_shared_from_this<Watcher> {
  Watcher(redisAsyncContext* c, asio::io_context& io) : ac(c), socket(io, c->c.fd) {}

  void wait(Wait type, bool& wanted, bool& pending) {
    if (!wanted || pending || ac == nullptr) return;
    pending = true;
    socket.async_wait(type,
                      [self = shared_from_this(), type, &wanted, &pending](boost::system::error_code ec) {
                        pending = false;
                        if (ec || self->ac == nullptr || !wanted) return;
                        if (type == Wait::wait_read) {
                          redisAsyncHandleRead(self->ac);
                        } else {
                          redisAsyncHandleWrite(self->ac);
                        }
                        // hiredis may have freed the context (and so called cleanup) inside the handler.
                        self->wait(type, wanted, pending);
                      });
  }
  void want_read(bool on) {
    reading = on;
    wait(Wait::wait_read, reading, read_pending);
  }
  void want_write(bool on) {
    writing = on;
    wait(Wait::wait_write, writing, write_pending);
  }
  void detach() {
    ac = nullptr;
    reading = writing = false;
    boost::system::error_code ignored;
    socket.cancel(ignored);
    socket.release();  // hiredis closes its own socket
  }

  redisAsyncContext* ac;
  asio::posix::stream_descriptor socket;
  bool reading = false, writing = false, read_pending = false, write_pending = false;
};

Watcher& watcher(void* data) {
  return **static_cast<std::shared_ptr<Watcher>*>(data);
}

}  // namespace

void attach_to_asio(redisAsyncContext* ac, asio::io_context& io) {
  auto* holder = new std::shared_ptr<Watcher>(std::make_shared<Watcher>(ac, io));
  ac->ev.data = holder;
  ac->ev.addRead = [](void* d) { watcher(d).want_read(true); };
  ac->ev.delRead = [](void* d) { watcher(d).want_read(false); };
  ac->ev.addWrite = [](void* d) { watcher(d).want_write(true); };
  ac->ev.delWrite = [](void* d) { watcher(d).want_write(false); };
  ac->ev.cleanup = [](void* d) {
    auto* h = static_cast<std::shared_ptr<Watcher>*>(d);
    (*h)->detach();
    delete h;
  };
  // The connect completes when the socket becomes writable.
  ac->ev.addWrite(ac->ev.data);
}

}  // namespace aw::broker::redis
