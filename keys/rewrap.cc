#include "keys/rewrap.h"

#include <vector>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "ledger/db/params.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/try.h"

namespace paygate::keys {
namespace {

namespace asio = boost::asio;
using db::Params;
using db::PgConnection;

// The blob's 4 version bytes (big-endian, so bytea order is numeric order) as an SQL expression;
// NULL for a blob too short to have them. CASE, because SQL does not promise to evaluate a guard
// in a WHERE clause first.
std::string VersionBytesSql(std::string_view blob) {
  return fmt::format(
      "CASE WHEN length({0}) >= 6 AND length({0}) >= 6 + get_byte({0}, 1) "
      "THEN substring({0} FROM 3 + get_byte({0}, 1) FOR 4) END",
      blob);
}

std::string VersionBytes(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

struct Batch {
  std::int64_t rows = 0;
  std::int64_t rewrapped = 0;
  std::int64_t failed = 0;
  std::string last_id;
};

}  // namespace

std::string RowAad(const EncryptedColumn& column, std::string_view row_id) {
  return fmt::format("{}/{}/{}", column.aad_prefix, row_id, column.blob_column);
}

bool IsPlainIdentifier(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

asio::awaitable<Result<RewrapReport>> RewrapColumn(db::PgPool& pool, const FieldCipher& cipher,
                                                   const EncryptedColumn& column,
                                                   RewrapOptions options) {
  if (!IsPlainIdentifier(column.table) || !IsPlainIdentifier(column.id_column) ||
      !IsPlainIdentifier(column.blob_column) || options.batch_size < 1) {
    co_return Errc::bad_key_material;
  }
  const std::string& t = column.table;
  const std::string& id = column.id_column;
  const std::string& blob = column.blob_column;
  const std::string version_sql = VersionBytesSql(blob);
  // The cursor comparison takes the id as untyped text, so the server parses it as the id
  // column's own type (text, bigint, uuid...).
  const std::string select_first = fmt::format(
      "SELECT {1}::text, {2} FROM {0} WHERE {2} IS NOT NULL AND {3} < $1 "
      "ORDER BY {1} LIMIT $2 FOR UPDATE SKIP LOCKED",
      t, id, blob, version_sql);
  const std::string select_after = fmt::format(
      "SELECT {1}::text, {2} FROM {0} WHERE {2} IS NOT NULL AND {3} < $1 AND {1} > $3 "
      "ORDER BY {1} LIMIT $2 FOR UPDATE SKIP LOCKED",
      t, id, blob, version_sql);
  const std::string update =
      fmt::format("UPDATE {0} SET {2} = $1 WHERE {1} = $2 AND {2} = $3", t, id, blob);
  const std::string count_remaining = fmt::format(
      "SELECT count(*) FROM {0} WHERE {1} IS NOT NULL AND {2} < $1", t, blob, version_sql);

  RewrapReport report;
  std::optional<std::string> cursor = options.after_id;
  const std::string target = VersionBytes(cipher.current_version());
  for (;;) {
    if (options.batches_max > 0 && report.batches >= options.batches_max) break;
    const db::Deadline deadline = db::Clock::now() + options.batch_timeout;
    LEDGER_CO_TRY(
        auto batch,
        co_await db::RunInTransaction(
            pool, deadline, db::TransactionOptions{},
            [&](PgConnection& conn) -> asio::awaitable<Result<Batch>> {
              Params params;
              params.AddBytea(target).Add(options.batch_size);
              if (cursor) params.AddUntyped(*cursor);
              const std::string& select = cursor ? select_after : select_first;
              LEDGER_CO_TRY(auto rows, co_await conn.Execute(select, std::move(params), deadline));
              Batch out;
              out.rows = rows.rows();
              std::vector<db::PipelineStep> updates;
              for (int r = 0; r < rows.rows(); ++r) {
                LEDGER_CO_TRY(auto row_id, rows.GetText(r, 0));
                LEDGER_CO_TRY(auto old_blob, rows.GetBytea(r, 1));
                out.last_id = std::string(row_id);
                const std::string aad = RowAad(column, row_id);
                auto plaintext = cipher.Decrypt(old_blob, aad);
                if (!plaintext) {
                  ++out.failed;
                  continue;
                }
                LEDGER_CO_TRY(auto new_blob, cipher.Encrypt(plaintext.value(), aad));
                Params update_params;
                update_params.AddBytea(new_blob).AddUntyped(row_id).AddBytea(old_blob);
                updates.push_back(db::PipelineStep{db::Statement{"", update},
                                                   std::move(update_params)});
              }
              if (updates.empty()) co_return out;
              LEDGER_CO_TRY(auto results,
                            co_await conn.ExecutePipeline(std::move(updates), deadline));
              for (const auto& result : results) out.rewrapped += result.affected_rows();
              co_return out;
            }));
    ++report.batches;
    report.rewrapped += batch.rewrapped;
    report.failed += batch.failed;
    if (!batch.last_id.empty()) {
      report.last_id = batch.last_id;
      cursor = batch.last_id;
    }
    if (batch.rows < options.batch_size) {
      report.reached_end = true;
      break;
    }
    if (options.pause.count() > 0) {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(options.pause);
      boost::system::error_code ignored;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
  }
  {
    LEDGER_CO_TRY(auto lease, co_await pool.Acquire(db::Clock::now() + options.batch_timeout));
    Params params;
    params.AddBytea(target);
    LEDGER_CO_TRY(auto rows, co_await lease->Execute(count_remaining, std::move(params),
                                                     db::Clock::now() + options.batch_timeout));
    LEDGER_CO_TRY(report.remaining, rows.GetInt64(0, 0));
  }
  co_return report;
}

}  // namespace paygate::keys
