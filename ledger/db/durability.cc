#include "ledger/db/durability.h"

#include <utility>  // Before Asio (DESIGN.md §2).

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace paygate::db {

boost::asio::awaitable<Result<void, DetailedError>> CheckDurability(PgConnection& conn,
                                                                    Deadline deadline) {
  auto rows = co_await conn.Execute(
      "SELECT current_setting('fsync'), current_setting('synchronous_commit'), "
      "current_setting('full_page_writes')",
      {}, deadline);
  if (!rows) co_return DetailedError(rows.error());
  constexpr std::string_view kNames[] = {"fsync", "synchronous_commit", "full_page_writes"};
  std::string unsafe;
  for (int col = 0; col < 3; ++col) {
    auto value = rows.value().GetText(0, col);
    if (!value) co_return DetailedError(value.error());
    // "off" is how PostgreSQL shows every disabled boolean and synchronous_commit=off alike.
    if (value.value() == "off") {
      unsafe += fmt::format("{}{}=off", unsafe.empty() ? "" : ", ", kNames[col]);
    }
  }
  if (!unsafe.empty()) {
    co_return DetailedError(
        make_error_code(Errc::unsafe_durability),
        fmt::format("unsafe PostgreSQL durability settings: {}; committed payments could be lost "
                    "in a crash, so paygated refuses to run",
                    unsafe));
  }
  co_return outcome::success();
}

boost::asio::awaitable<Result<void, DetailedError>> CheckDurability(PgPool& pool,
                                                                    Deadline deadline) {
  auto lease = co_await pool.Acquire(deadline);
  if (!lease) co_return DetailedError(lease.error());
  co_return co_await CheckDurability(*lease.value(), deadline);
}

}  // namespace paygate::db
