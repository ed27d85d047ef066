#pragma once

// The io_context of a simulator's Impl. Its coroutines (TLS sessions, delayed callbacks) refer to
// members declared after the io_context (the SSL context, the callback client, the state maps), so
// plain member destruction would free those first and destroy the pending coroutine frames only
// afterwards, in ~io_context, touching freed memory (an occasional abort at test teardown while a
// delayed callback was still pending). ~Impl calls ShutdownNow() first: every pending handler is
// destroyed while everything it refers to still exists. ~io_context's own shutdown is then a no-op.
#include <utility>  // GCC 12 with Boost 1.74: before Asio.

#include <boost/asio/io_context.hpp>

namespace paygate::adapters {

class OwnedIoContext : public boost::asio::io_context {
 public:
  using boost::asio::io_context::io_context;
  void ShutdownNow() { shutdown(); }
};

}  // namespace paygate::adapters
