#include "gateway/auth/nonce_store.h"

#include <fmt/format.h>

namespace paygate::auth {
namespace {

// An expired record (not purged yet) is taken over: its replay window has passed.
constexpr db::Statement kRemember{
    "auth_nonce_remember",
    "INSERT INTO api_nonces AS n (key_id, nonce, expires_at) "
    "VALUES ($1, $2, now() + $3::interval) "
    "ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at "
    "WHERE n.expires_at < now() "
    "RETURNING 1"};

constexpr db::Statement kPurge{"auth_nonce_purge", "SELECT api_nonces_purge()"};

}  // namespace

boost::asio::awaitable<Result<bool>> PostgresNonceStore::Remember(std::string_view key_id,
                                                                  std::string_view nonce,
                                                                  std::chrono::seconds keep_for,
                                                                  db::Deadline deadline) {
  auto lease = co_await pool_.Acquire(deadline);
  if (!lease) co_return lease.error();
  db::Params params;
  params.Add(key_id).Add(nonce).AddUntyped(fmt::format("{} seconds", keep_for.count()));
  auto inserted = co_await lease.value()->Execute(kRemember, std::move(params), deadline);
  if (!inserted) co_return inserted.error();
  co_return inserted.value().rows() == 1;
}

boost::asio::awaitable<Result<std::int64_t>> PostgresNonceStore::Purge(db::Deadline deadline) {
  auto lease = co_await pool_.Acquire(deadline);
  if (!lease) co_return lease.error();
  auto purged = co_await lease.value()->Execute(kPurge, db::Params(), deadline);
  if (!purged) co_return purged.error();
  co_return purged.value().GetInt64(0, 0);
}

}  // namespace paygate::auth
