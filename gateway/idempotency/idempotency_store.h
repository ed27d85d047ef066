#pragma once

// Idempotency-Key records (DESIGN.md §4 "Idempotency records", §5 "Idempotency-Key"): per principal
// and key, the request's fingerprint, whether it is in flight or done, and the response to replay.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "ledger/db/pg_connection.h"
#include "ledger/db/pg_pool.h"

namespace paygate::idempotency {

enum class Errc {
  // 0 is reserved for success by std::error_code.
  lease_lost = 1,  // The claim's lease expired and another request took the key over.
  bad_record,      // A stored record does not have the shape the schema promises.
};
const std::error_category& ErrorCategory() noexcept;
std::error_code make_error_code(Errc e) noexcept;

// Whose key it is: another principal's identical key is a different record.
struct IdempotencyKey {
  std::string principal;
  std::string key;
};

// SHA-256 (32 raw bytes) over what makes two requests "the same request": method, target (path and
// query), Content-Type and body, each length-prefixed so no two different requests share an input.
std::string RequestFingerprint(std::string_view method, std::string_view target,
                               std::string_view content_type, std::string_view body);

// A response as stored and replayed.
struct StoredResponse {
  int status = 0;
  std::string content_type;
  // Header lines worth replaying, "Name: value\r\n" each (see WithIdempotency).
  std::string headers;
  std::string body;
};

struct BeginOutcome {
  enum class Kind {
    kClaimed,   // The caller owns the key now: run the request, then Complete() or Release().
    kInFlight,  // Another request with this key holds a live lease.
    kMismatch,  // The key was used with a different fingerprint.
    kDone,      // The same request completed before: replay `response`.
  };
  Kind kind = Kind::kClaimed;
  std::string lease_token;          // kClaimed: proves ownership to Complete() and Release().
  StoredResponse response;          // kDone.
  std::string original_request_id;  // kDone: the request id that produced `response`.
};

// Contract: Begin() is atomic across every process sharing the store: of concurrent calls for one
// key, at most one is kClaimed while its lease lives. A claim whose lease expired (its daemon
// crashed) may be claimed again by a request with the same fingerprint. Records live at least 7
// days. Thread-safe.
class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;

  virtual boost::asio::awaitable<Result<BeginOutcome>> Begin(const IdempotencyKey& key,
                                                             std::string_view fingerprint,
                                                             std::string_view request_id,
                                                             db::Deadline deadline) = 0;
  // Stores the response of a claimed key: later Begin()s with its fingerprint get kDone.
  // Errc::lease_lost when the claim is no longer this caller's.
  virtual boost::asio::awaitable<Result<void>> Complete(const IdempotencyKey& key,
                                                        std::string_view lease_token,
                                                        const StoredResponse& response,
                                                        db::Deadline deadline) = 0;
  // Forgets a claimed key so a retry runs the request again. A claim no longer this caller's is
  // left alone (success).
  virtual boost::asio::awaitable<Result<void>> Release(const IdempotencyKey& key,
                                                       std::string_view lease_token,
                                                       db::Deadline deadline) = 0;
};

struct PostgresIdempotencyStoreOptions {
  // How long a claim blocks its key before another request may take it over: longer than any
  // request's own deadline, so a live request is never taken over.
  std::chrono::milliseconds lease{60000};
  // How long records are kept; at least 7 days (the table refuses less).
  std::chrono::seconds retention{7 * 24 * 3600};
};

// The idempotency_keys table (ledger/migrations/0004_api_auth.sql). Lease and expiry times use the
// database clock, one clock for every daemon.
class PostgresIdempotencyStore : public IdempotencyStore {
 public:
  // `pool` must outlive the store.
  explicit PostgresIdempotencyStore(db::PgPool& pool, PostgresIdempotencyStoreOptions options = {})
      : pool_(pool), options_(options) {}

  boost::asio::awaitable<Result<BeginOutcome>> Begin(const IdempotencyKey& key,
                                                     std::string_view fingerprint,
                                                     std::string_view request_id,
                                                     db::Deadline deadline) override;
  boost::asio::awaitable<Result<void>> Complete(const IdempotencyKey& key,
                                                std::string_view lease_token,
                                                const StoredResponse& response,
                                                db::Deadline deadline) override;
  boost::asio::awaitable<Result<void>> Release(const IdempotencyKey& key,
                                               std::string_view lease_token,
                                               db::Deadline deadline) override;

  // Deletes expired records (idempotency_keys_purge()); returns how many. For the janitor.
  boost::asio::awaitable<Result<std::int64_t>> Purge(db::Deadline deadline);

 private:
  db::PgPool& pool_;
  const PostgresIdempotencyStoreOptions options_;
};

}  // namespace paygate::idempotency

template <>
struct std::is_error_code_enum<paygate::idempotency::Errc> : std::true_type {};
