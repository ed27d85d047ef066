#include "gateway/idempotency/idempotency_store.h"

#include <openssl/evp.h>

#include <array>
#include <cstdlib>

#include <fmt/format.h>

namespace paygate::idempotency {
namespace {

class Category : public std::error_category {
 public:
  const char* name() const noexcept override { return "paygate.idempotency"; }
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::lease_lost:
        return "the idempotency key's lease was lost to another request";
      case Errc::bad_record:
        return "a stored idempotency record is malformed";
    }
    return "unknown idempotency error";
  }
};

// Claims the key when it is free: absent, expired, or abandoned in flight (lease passed) by a
// request with the same fingerprint. Otherwise returns the record as it stands. The record is read
// in the same statement, but from the statement's snapshot: a conflicting row committed after the
// snapshot is not seen there, and the caller then runs the statement again.
constexpr db::Statement kBegin{
    "idempotency_begin",
    "WITH claimed AS ("
    "  INSERT INTO idempotency_keys AS k (principal, key, fingerprint, state, lease_token,"
    "    lease_expires_at, request_id, created_at, expires_at)"
    "  VALUES ($1, $2, $3, 'in_flight', gen_random_uuid(), now() + $4::interval, $5, now(),"
    "    now() + $6::interval)"
    "  ON CONFLICT (principal, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
    "    state = 'in_flight', lease_token = EXCLUDED.lease_token,"
    "    lease_expires_at = EXCLUDED.lease_expires_at, request_id = EXCLUDED.request_id,"
    "    response_status = NULL, response_content_type = NULL, response_headers = NULL,"
    "    response_body = NULL, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at"
    "  WHERE k.expires_at < now()"
    "     OR (k.state = 'in_flight' AND k.lease_expires_at < now()"
    "         AND k.fingerprint = EXCLUDED.fingerprint)"
    "  RETURNING k.lease_token)"
    " SELECT 'claimed' AS state, lease_token::text, NULL::boolean AS same_request,"
    "   NULL::text AS request_id, NULL::integer AS response_status,"
    "   NULL::text AS response_content_type, NULL::bytea AS response_headers,"
    "   NULL::bytea AS response_body"
    " FROM claimed"
    " UNION ALL"
    " SELECT k.state, NULL, k.fingerprint = $3, k.request_id, k.response_status,"
    "   k.response_content_type, k.response_headers, k.response_body"
    " FROM idempotency_keys k"
    " WHERE k.principal = $1 AND k.key = $2 AND NOT EXISTS (SELECT 1 FROM claimed)"};

constexpr db::Statement kComplete{
    "idempotency_complete",
    "UPDATE idempotency_keys SET state = 'done', lease_expires_at = NULL, response_status = $4,"
    " response_content_type = $5, response_headers = $6, response_body = $7"
    " WHERE principal = $1 AND key = $2 AND lease_token = $3::uuid AND state = 'in_flight'"};

constexpr db::Statement kRelease{
    "idempotency_release",
    "DELETE FROM idempotency_keys"
    " WHERE principal = $1 AND key = $2 AND lease_token = $3::uuid AND state = 'in_flight'"};

constexpr db::Statement kPurge{"idempotency_purge", "SELECT idempotency_keys_purge()"};

// Begin's statement is run again at most this often when the conflicting row was not yet visible.
constexpr int kBeginAttemptsMax = 5;

void AppendLengthPrefixed(EVP_MD_CTX* ctx, std::string_view part) {
  const std::uint64_t size = part.size();
  std::array<unsigned char, 8> prefix{};
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(size >> (56 - 8 * i));
  EVP_DigestUpdate(ctx, prefix.data(), prefix.size());
  EVP_DigestUpdate(ctx, part.data(), part.size());
}

}  // namespace

const std::error_category& ErrorCategory() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept { return {static_cast<int>(e), ErrorCategory()}; }

std::string RequestFingerprint(std::string_view method, std::string_view target,
                               std::string_view content_type, std::string_view body) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) std::abort();
  for (std::string_view part : {method, target, content_type, body}) {
    AppendLengthPrefixed(ctx, part);
  }
  std::string out(32, '\0');
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()), &size) != 1 ||
      size != 32) {
    std::abort();
  }
  EVP_MD_CTX_free(ctx);
  return out;
}

boost::asio::awaitable<Result<BeginOutcome>> PostgresIdempotencyStore::Begin(
    const IdempotencyKey& key, std::string_view fingerprint, std::string_view request_id,
    db::Deadline deadline) {
  auto lease = co_await pool_.Acquire(deadline);
  if (!lease) co_return lease.error();
  for (int attempt = 1; attempt <= kBeginAttemptsMax; ++attempt) {
    db::Params params;
    params.Add(key.principal)
        .Add(key.key)
        .AddBytea(fingerprint)
        .AddUntyped(fmt::format("{} milliseconds", options_.lease.count()))
        .Add(request_id)
        .AddUntyped(fmt::format("{} seconds", options_.retention.count()));
    auto rows = co_await lease.value()->Execute(kBegin, std::move(params), deadline);
    if (!rows) co_return rows.error();
    const db::PgResult& r = rows.value();
    if (r.rows() == 0) continue;  // Released or not yet visible: try again.
    auto state = r.GetText(0, 0);
    if (!state) co_return state.error();
    BeginOutcome outcome;
    if (state.value() == "claimed") {
      auto token = r.GetText(0, 1);
      if (!token) co_return token.error();
      outcome.kind = BeginOutcome::Kind::kClaimed;
      outcome.lease_token = token.value();
      co_return outcome;
    }
    auto same = r.GetBool(0, 2);
    if (!same) co_return same.error();
    if (!same.value()) {
      outcome.kind = BeginOutcome::Kind::kMismatch;
      co_return outcome;
    }
    if (state.value() == "in_flight") {
      outcome.kind = BeginOutcome::Kind::kInFlight;
      co_return outcome;
    }
    if (state.value() != "done") co_return make_error_code(Errc::bad_record);
    auto original = r.GetText(0, 3);
    auto status = r.GetInt64(0, 4);
    auto content_type = r.GetText(0, 5);
    auto headers = r.GetBytea(0, 6);
    auto body = r.GetBytea(0, 7);
    if (!original || !status || !content_type || !headers || !body) {
      co_return make_error_code(Errc::bad_record);
    }
    outcome.kind = BeginOutcome::Kind::kDone;
    outcome.original_request_id = original.value();
    outcome.response.status = static_cast<int>(status.value());
    outcome.response.content_type = content_type.value();
    outcome.response.headers = std::move(headers).value();
    outcome.response.body = std::move(body).value();
    co_return outcome;
  }
  // Every attempt found the key neither free nor held: it keeps being released and re-claimed
  // under us. Whoever holds it now is in flight.
  BeginOutcome outcome;
  outcome.kind = BeginOutcome::Kind::kInFlight;
  co_return outcome;
}

boost::asio::awaitable<Result<void>> PostgresIdempotencyStore::Complete(
    const IdempotencyKey& key, std::string_view lease_token, const StoredResponse& response,
    db::Deadline deadline) {
  auto lease = co_await pool_.Acquire(deadline);
  if (!lease) co_return lease.error();
  db::Params params;
  params.Add(key.principal)
      .Add(key.key)
      .Add(lease_token)
      .Add(static_cast<std::int32_t>(response.status))
      .Add(response.content_type)
      .AddBytea(response.headers)
      .AddBytea(response.body);
  auto updated = co_await lease.value()->Execute(kComplete, std::move(params), deadline);
  if (!updated) co_return updated.error();
  if (updated.value().affected_rows() != 1) co_return make_error_code(Errc::lease_lost);
  co_return outcome::success();
}

boost::asio::awaitable<Result<void>> PostgresIdempotencyStore::Release(const IdempotencyKey& key,
                                                                       std::string_view lease_token,
                                                                       db::Deadline deadline) {
  auto lease = co_await pool_.Acquire(deadline);
  if (!lease) co_return lease.error();
  db::Params params;
  params.Add(key.principal).Add(key.key).Add(lease_token);
  auto deleted = co_await lease.value()->Execute(kRelease, std::move(params), deadline);
  if (!deleted) co_return deleted.error();
  co_return outcome::success();
}

boost::asio::awaitable<Result<std::int64_t>> PostgresIdempotencyStore::Purge(
    db::Deadline deadline) {
  auto lease = co_await pool_.Acquire(deadline);
  if (!lease) co_return lease.error();
  auto purged = co_await lease.value()->Execute(kPurge, db::Params(), deadline);
  if (!purged) co_return purged.error();
  co_return purged.value().GetInt64(0, 0);
}

}  // namespace paygate::idempotency
