#pragma once

// Nonces of signed requests, shared by every daemon (DESIGN.md §5 "replays rejected"): a nonce
// accepted by one daemon behind a load balancer is a replay at all of them.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "ledger/db/pg_connection.h"
#include "ledger/db/pg_pool.h"

namespace paygate::auth {

// Contract: Remember() is atomic across all processes sharing the store: of concurrent calls with
// one (key_id, nonce), exactly one gets true. Thread-safe.
class NonceStore {
 public:
  virtual ~NonceStore() = default;
  // Records `nonce` for `key_id` for `keep_for`: true when it was not already recorded (or its
  // record expired), false for a replay. Errors: the store's (database) errors; the caller then
  // answers 503, never accepts.
  virtual boost::asio::awaitable<Result<bool>> Remember(std::string_view key_id,
                                                        std::string_view nonce,
                                                        std::chrono::seconds keep_for,
                                                        db::Deadline deadline) = 0;
};

// The api_nonces table (ledger/migrations/0004_api_auth.sql): one INSERT ... ON CONFLICT per
// signed request; expiry uses the database clock.
class PostgresNonceStore : public NonceStore {
 public:
  // `pool` must outlive the store.
  explicit PostgresNonceStore(db::PgPool& pool) : pool_(pool) {}

  boost::asio::awaitable<Result<bool>> Remember(std::string_view key_id, std::string_view nonce,
                                                std::chrono::seconds keep_for,
                                                db::Deadline deadline) override;

  // Deletes expired nonces (api_nonces_purge()); returns how many. For the janitor.
  boost::asio::awaitable<Result<std::int64_t>> Purge(db::Deadline deadline);

 private:
  db::PgPool& pool_;
};

}  // namespace paygate::auth
