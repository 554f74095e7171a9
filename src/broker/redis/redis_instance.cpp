#include "broker/redis/redis_instance.hpp"

#include <poll.h>

#include <algorithm>

#include "broker/broker.hpp"
#include "core/log.hpp"
#include "core/random_id.hpp"

namespace aw::broker::redis {
namespace {

constexpr auto kRetryAfter = std::chrono::milliseconds(200);

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

BrokerError unavailable(const Endpoint& e, const std::string& why) {
  return BrokerError("redis " + e.name + ": " + why, BrokerError::Kind::unavailable);
}

// An error reply: Redis still loading its data after a restart, busy with a script, or a replica that
// cannot take writes is unavailable for now; anything else is a failure.
BrokerError error_reply(const Endpoint& e, const redisReply* r) {
  std::string_view text(r->str, r->len);
  bool transient = false;
  for (std::string_view prefix : {"LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN"})
    transient = transient || text.starts_with(prefix);
  return BrokerError("redis " + e.name + ": " + std::string(text),
                     transient ? BrokerError::Kind::unavailable : BrokerError::Kind::failed);
}

}  // namespace

RedisInstance::RedisInstance(Endpoint endpoint, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout) {}

RedisInstance::~RedisInstance() {
  drop();
}

void RedisInstance::drop() {
  // What was sent on it and not answered yet may or may not have run: its callers answer 503.
  for (Outstanding& o : outstanding_) {
    if (!o.reply && !o.lost) o.lost = "connection lost before the answer";
  }
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
  script_sha_.clear();
  generation_.clear();
  if (up_.exchange(false)) log::warn("broker_down", {{"broker", endpoint_.name}});
}

redisContext* RedisInstance::connection() {
  if (ctx_ != nullptr) return ctx_;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) throw unavailable(endpoint_, "not connected");
  redisContext* c = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, to_timeval(timeout_));
  if (c == nullptr || c->err != 0) {
    // Only a failed attempt delays the next: a Redis that just restarted is used at once.
    next_attempt_ = std::chrono::steady_clock::now() + kRetryAfter;
    std::string why = c != nullptr ? c->errstr : "out of memory";
    if (c != nullptr) redisFree(c);
    throw unavailable(endpoint_, why);
  }
  redisSetTimeout(c, to_timeval(timeout_));
  ctx_ = c;
  if (endpoint_.db != 0) {
    const std::string db = std::to_string(endpoint_.db);
    Reply r;
    try {
      r = send({"SELECT", db});
    } catch (const BrokerError&) {
      next_attempt_ = std::chrono::steady_clock::now() + kRetryAfter;
      throw;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      BrokerError e = error_reply(endpoint_, r.get());
      drop();
      next_attempt_ = std::chrono::steady_clock::now() + kRetryAfter;
      throw e;
    }
  }
  up_ = true;
  if (connected_once_) figures_.reconnects.fetch_add(1, std::memory_order_relaxed);
  connected_once_ = true;
  log::info("broker_up", {{"broker", endpoint_.name}});
  return ctx_;
}

bool RedisInstance::read_outstanding(std::size_t count) {
  for (std::size_t i = 0; i < std::min(count, outstanding_.size()); ++i) {
    Outstanding& o = outstanding_[i];
    if (o.reply || o.lost) continue;
    void* raw = nullptr;
    if (ctx_ == nullptr || redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      std::string why = ctx_ != nullptr ? ctx_->errstr : "";
      o.lost = why.empty() ? "no answer" : why;
      drop();
      return false;
    }
    o.reply.reset(static_cast<redisReply*>(raw));
  }
  return true;
}

Reply RedisInstance::send(const std::vector<std::string_view>& args) {
  // The answers still to come for batches sent earlier come first on this connection.
  if (!read_outstanding(outstanding_.size()) || ctx_ == nullptr)
    throw unavailable(endpoint_, "connection lost");
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (raw == nullptr) {
    std::string why = ctx_->errstr;
    drop();
    throw unavailable(endpoint_, why.empty() ? "no answer" : why);
  }
  return Reply(raw);
}

Reply RedisInstance::command(const std::vector<std::string_view>& args) {
  try {
    return command_once_more(args);
  } catch (const BrokerError&) {
    figures_.errors.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
}

Reply RedisInstance::command_once_more(const std::vector<std::string_view>& args) {
  // A connection Redis dropped (e.g. it restarted) fails on its first use: a read is safe to send
  // again at once on a new one.
  for (int attempt = 0;; ++attempt) {
    const bool had_connection = ctx_ != nullptr;
    connection();
    try {
      Reply r = send(args);
      if (r->type == REDIS_REPLY_ERROR) throw error_reply(endpoint_, r.get());
      return r;
    } catch (const BrokerError& e) {
      if (e.kind() != BrokerError::Kind::unavailable || !had_connection || attempt > 0) throw;
      next_attempt_ = {};
    }
  }
}

Reply RedisInstance::eval(const std::string& script, const std::vector<std::string_view>& args) {
  return eval_take(eval_send(script, args), script, args);
}

std::uint64_t RedisInstance::eval_send(const std::string& script, const std::vector<std::string_view>& args) {
  try {
    connection();
    if (script_sha_.empty()) {
      Reply loaded = command_once_more({"SCRIPT", "LOAD", script});
      script_sha_.assign(loaded->str, loaded->len);
    }
    redisContext* c = connection();  // the load may have needed a new one
    std::vector<const char*> argv{"EVALSHA", script_sha_.c_str(), "0"};
    std::vector<std::size_t> lens{7, script_sha_.size(), 1};
    for (auto a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    int done = 0;
    bool sent =
        redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()) == REDIS_OK;
    while (sent && done == 0) sent = redisBufferWrite(c, &done) == REDIS_OK;
    if (!sent) {
      std::string why = c->errstr;
      drop();
      throw unavailable(endpoint_, why.empty() ? "could not send" : why);
    }
    outstanding_.push_back({next_ticket_, std::chrono::steady_clock::now(), nullptr, std::nullopt});
    return next_ticket_++;
  } catch (const BrokerError&) {
    figures_.errors.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
}

Reply RedisInstance::eval_take(std::uint64_t ticket, const std::string& script,
                               const std::vector<std::string_view>& args) {
  try {
    // Older tickets nobody will take (their batch failed on another instance first): dropped, answer
    // read or not.
    while (!outstanding_.empty() && outstanding_.front().ticket < ticket) {
      read_outstanding(1);
      outstanding_.pop_front();
    }
    if (outstanding_.empty() || outstanding_.front().ticket != ticket)
      throw BrokerError("redis " + endpoint_.name + ": no batch sent with that ticket",
                        BrokerError::Kind::failed);
    read_outstanding(1);  // this one's answer only: the batches sent after it may still be running
    Outstanding o = std::move(outstanding_.front());
    outstanding_.pop_front();
    if (o.lost) throw unavailable(endpoint_, *o.lost);
    Reply r = std::move(o.reply);
    if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
      script_sha_.clear();  // the server forgot it (SCRIPT FLUSH): nothing of it ran, so it runs now
      r = eval_loaded(script, args);
    }
    if (r->type == REDIS_REPLY_ERROR) throw error_reply(endpoint_, r.get());
    record_eval(o.sent);
    return r;
  } catch (const BrokerError&) {
    figures_.errors.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
}

bool RedisInstance::answered(std::uint64_t ticket, std::chrono::microseconds wait) {
  for (Outstanding& o : outstanding_) {
    if (o.ticket > ticket) break;
    if (o.reply || o.lost) continue;
    // Gone, or waited for as long as any answer is: eval_take reads it or gives up (503), so a Redis
    // that stopped answering fails the commit instead of leaving its publishers waiting.
    if (ctx_ == nullptr || std::chrono::steady_clock::now() - o.sent >= timeout_) return true;
    // An answer read from the socket with an earlier one waits in hiredis's buffer, not on the socket.
    void* raw = nullptr;
    if (redisReaderGetReply(ctx_->reader, &raw) != REDIS_OK) return true;  // eval_take reports it
    if (raw != nullptr) {
      o.reply.reset(static_cast<redisReply*>(raw));
      continue;
    }
    pollfd p{ctx_->fd, POLLIN, 0};
    const auto us = wait.count();
    timespec ts{static_cast<time_t>(us / 1'000'000), static_cast<long>((us % 1'000'000) * 1000)};
    return ppoll(&p, 1, &ts, nullptr) != 0;  // readable, closed or failed: eval_take reads it
  }
  return true;
}

void RedisInstance::record_eval(std::chrono::steady_clock::time_point started) {
  const auto took = std::chrono::steady_clock::now() - started;
  figures_.commit_us_sum.fetch_add(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()),
      std::memory_order_relaxed);
  figures_.batches.fetch_add(1, std::memory_order_relaxed);
}

Reply RedisInstance::eval_loaded(const std::string& script, const std::vector<std::string_view>& args) {
  connection();
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (script_sha_.empty()) {
      Reply loaded = command_once_more({"SCRIPT", "LOAD", script});
      script_sha_.assign(loaded->str, loaded->len);
    }
    std::vector<std::string_view> argv{"EVALSHA", script_sha_, "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    Reply r = send(argv);
    if (r->type == REDIS_REPLY_ERROR && std::string_view(r->str, r->len).starts_with("NOSCRIPT")) {
      script_sha_.clear();  // a restarted Redis forgot it: load it again
      continue;
    }
    if (r->type == REDIS_REPLY_ERROR) throw error_reply(endpoint_, r.get());
    return r;
  }
  throw BrokerError("redis " + endpoint_.name + ": script not loaded", BrokerError::Kind::failed);
}

const std::string& RedisInstance::generation() {
  if (!generation_.empty()) return generation_;
  // SET NX GET: ours when none was there, else the one there (Redis 7).
  const std::string candidate = random_hex_id(8);
  Reply r = command({"SET", "aw:generation", candidate, "NX", "GET"});
  if (r->type == REDIS_REPLY_NIL) {
    generation_ = candidate;
  } else if (r->type == REDIS_REPLY_STRING && r->len > 0) {
    generation_.assign(r->str, r->len);
  } else {
    throw BrokerError("redis: unexpected answer to SET aw:generation", BrokerError::Kind::failed);
  }
  return generation_;
}

std::vector<Reply> RedisInstance::pipeline(const std::vector<std::vector<std::string>>& commands) {
  connection();
  if (!read_outstanding(outstanding_.size())) throw unavailable(endpoint_, "connection lost");
  redisContext* c = connection();
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  auto lost = [&] {
    std::string why = c->errstr;
    drop();
    return unavailable(endpoint_, why.empty() ? "no answer" : why);
  };
  for (const auto& command : commands) {
    argv.clear();
    lens.clear();
    for (const auto& a : command) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK)
      throw lost();
  }
  std::vector<Reply> out;
  out.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) throw lost();
    out.emplace_back(static_cast<redisReply*>(raw));
  }
  for (const Reply& r : out) {
    if (r->type == REDIS_REPLY_ERROR) throw error_reply(endpoint_, r.get());
  }
  return out;
}

}  // namespace aw::broker::redis
