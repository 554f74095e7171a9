#include "app/control_signals.hpp"

#include <signal.h>

#include <boost/asio/buffer.hpp>
#include <cerrno>
#include <system_error>

namespace aw::app {
namespace {

sigset_t control_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

int open_signalfd() {
  const sigset_t set = control_set();
  if (int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr); rc != 0)
    throw std::system_error(rc, std::generic_category(), "pthread_sigmask");
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
  return fd;
}

}  // namespace

ControlSignals::ControlSignals(boost::asio::io_context& ioc, std::function<void(int)> on_stop,
                               std::function<void()> on_reload)
    : fd_(ioc, open_signalfd()), on_stop_(std::move(on_stop)), on_reload_(std::move(on_reload)) {
  read_next();
}

ControlSignals::~ControlSignals() {
  boost::system::error_code ignored;
  fd_.close(ignored);
}

void ControlSignals::read_next() {
  fd_.async_read_some(boost::asio::buffer(&info_, sizeof info_),
                      [this](const boost::system::error_code& ec, std::size_t n) {
                        if (ec) return;  // closed at shutdown
                        if (n == sizeof info_) {
                          if (info_.ssi_signo == SIGHUP) {
                            on_reload_();
                          } else {
                            on_stop_(static_cast<int>(info_.ssi_signo));
                          }
                        }
                        read_next();
                      });
}

}  // namespace aw::app
