#pragma once
// Memory for a connection's one pending wait, kept inside the connection.
//
// Asio allocates each asynchronous operation on the heap through a per-thread recycling cache, which
// hands out any cached block that is large enough. An idle WebSocket connection's read wait (about
// 100 bytes) therefore often sat in the 600-byte block its HTTP upgrade request's read had used, for
// as long as the connection lived: more than the rest of the connection together. Binding the wait to
// an OpMemory gives it a block of its own size, inside the session, and no allocation per wait.
#include <boost/asio/bind_allocator.hpp>
#include <cstddef>
#include <new>

namespace aw::transport {

class OpMemory {
 public:
  OpMemory() = default;
  OpMemory(const OpMemory&) = delete;
  OpMemory& operator=(const OpMemory&) = delete;

  void* allocate(std::size_t size) {
    if (!in_use_ && size <= sizeof storage_) {
      in_use_ = true;
      return storage_;
    }
    return ::operator new(size);  // a larger operation, or a second one at once
  }
  void deallocate(void* p) noexcept {
    if (p == storage_) {
      in_use_ = false;
    } else {
      ::operator delete(p);
    }
  }
  bool in_use() const noexcept { return in_use_; }

 private:
  // A wait on a socket whose handler holds a shared_ptr takes 104 bytes on x86-64 with Boost 1.81
  // (op_memory_test checks that it fits). Not a byte more: with the flag, 112 bytes, which keeps the
  // session it sits in (and its shared_ptr's counts) within a 448-byte block.
  alignas(std::max_align_t) unsigned char storage_[104];
  bool in_use_ = false;
};

template <class T>
class OpMemoryAllocator {
 public:
  using value_type = T;

  explicit OpMemoryAllocator(OpMemory& memory) noexcept : memory_(&memory) {}
  template <class U>
  OpMemoryAllocator(const OpMemoryAllocator<U>& other) noexcept : memory_(other.memory_) {}

  T* allocate(std::size_t n) { return static_cast<T*>(memory_->allocate(sizeof(T) * n)); }
  void deallocate(T* p, std::size_t) noexcept { memory_->deallocate(p); }

  template <class U>
  bool operator==(const OpMemoryAllocator<U>& other) const noexcept {
    return memory_ == other.memory_;
  }

 private:
  template <class>
  friend class OpMemoryAllocator;
  OpMemory* memory_;
};

// `handler`, with its operation allocated in `memory`. The handler must keep `memory` alive (hold its
// owner) until it has run: Asio frees the operation's memory just before calling it.
template <class Handler>
auto in(OpMemory& memory, Handler&& handler) {
  return boost::asio::bind_allocator(OpMemoryAllocator<void>(memory), std::forward<Handler>(handler));
}

}  // namespace aw::transport
