// SIGINT/SIGTERM (stop) and SIGHUP (reload), read as data from a signalfd on the main io_context rather
// than caught by a handler. Construct it before any thread starts: it blocks the three signals in the
// calling thread, every thread started afterwards inherits the mask, and so no thread is ever interrupted
// by them. With a handler, a signal the kernel hands to a worker waits for that worker; under
// ThreadSanitizer (which defers handlers to the thread's next intercepted call) CI saw a SIGTERM sent
// right after start-up go unhandled for an hour.
#pragma once
#include <sys/signalfd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>

namespace aw::app {

class ControlSignals {
 public:
  // `on_stop` gets the signal's number (SIGINT or SIGTERM); `on_reload` runs for each SIGHUP.
  ControlSignals(boost::asio::io_context& ioc, std::function<void(int)> on_stop,
                 std::function<void()> on_reload);
  ~ControlSignals();
  ControlSignals(const ControlSignals&) = delete;
  ControlSignals& operator=(const ControlSignals&) = delete;

 private:
  void read_next();

  boost::asio::posix::stream_descriptor fd_;
  std::function<void(int)> on_stop_;
  std::function<void()> on_reload_;
  signalfd_siginfo info_{};  // a signalfd hands out whole records; a read is never split
};

}  // namespace aw::app
