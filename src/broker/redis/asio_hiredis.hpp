// Drives a hiredis async context from an Asio io_context: hiredis asks to watch its socket for reading
// or writing, Asio waits for readiness and hands the socket back to hiredis. The socket stays hiredis's:
// it is released, never closed, here.
#pragma once
#include <hiredis/async.h>

#include <boost/asio/io_context.hpp>

namespace aw::broker::redis {

// Installs the event hooks on `ac` (fresh from redisAsyncConnect) and starts waiting for the connect
// to complete. hiredis's cleanup hook undoes it when the context is freed.
void attach_to_asio(redisAsyncContext* ac, boost::asio::io_context& io);

}  // namespace aw::broker::redis
