#include "ledger/recon/settlement.h"

#include <utility>  // Before Asio (DESIGN.md §2).

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "ledger/db/params.h"
#include "ledger/db/transaction.h"
#include "ledger/ledger/chart.h"
#include "ledger/ledger/try.h"

namespace paygate::recon {
namespace {

namespace asio = boost::asio;
using db::ArrayLiteral;
using db::Params;
using db::PgConnection;

// The import's reason code for settlements (reconciler.cc): a net line is the same movement.
constexpr std::int32_t kReasonSettlement = 41;
constexpr std::size_t kReferencesMax = 100000;
constexpr int kLookbackDays = 31;

// A line's net, what the provider owes for it. A refund, and the fee it returns, count only when
// the money moved, as the import's totals count them (reconciler.cc RefundDone: WeChat writes
// these statuses for refunds that have not).
constexpr std::string_view kNet =
    "(CASE WHEN b.kind = 'payment' THEN b.amount_minor - b.fee_minor "
    "WHEN b.status IN ('PROCESSING', 'ABNORMAL', 'CLOSED', 'FAILED') THEN 0 "
    "ELSE -b.amount_minor - b.fee_minor END)";

// The bill lines a query reads, as relation b: the lines of recon_bill_items with their import's
// provider, merchant_account and settled_on_import, and their occurrence, the rank of the line
// among its bill's lines of the same provider transaction (1 unless the bill repeats the line).
// With the transaction, the occurrence is the line's settlement identity, which every version of
// the bill shares (migration 0015): it is counted over the whole bill, so `where` must select
// whole imports. A million-line bill costs one sort here.
std::string Lines(std::string_view where) {
  return fmt::format(
      "(SELECT b.*, i.provider, i.merchant_account, i.settled_on_import, row_number() OVER "
      "(PARTITION BY b.import_id, b.kind, b.provider_transaction_id, b.provider_refund_id "
      "ORDER BY b.line_no) AS occurrence FROM recon_bill_items b JOIN recon_imports i ON i.id = "
      "b.import_id WHERE {}) b",
      where);
}

// A line no settlement has taken yet: its import left it waiting, no settlement holds its
// provider transaction (through this line or the same transaction's line of another version of
// the bill: the renumbered lines of a corrected bill are settled already), and none holds its
// item (through another line).
constexpr std::string_view kUnsettled =
    "NOT b.settled_on_import AND NOT EXISTS (SELECT 1 FROM recon_settlement_items s WHERE "
    "s.provider = b.provider AND s.merchant_account = b.merchant_account AND s.kind = b.kind AND "
    "s.provider_transaction_id = b.provider_transaction_id AND s.provider_refund_id = "
    "b.provider_refund_id AND s.occurrence = b.occurrence) AND (b.our_id IS NULL OR NOT EXISTS "
    "(SELECT 1 FROM recon_settlement_items s WHERE s.our_kind = b.our_kind AND s.our_id = "
    "b.our_id))";

// A line named by the request's references ($4): payments by merchant reference, refunds by
// refund reference.
std::string Named(std::string_view b) {
  return fmt::format(
      "(({0}.kind = 'payment' AND {0}.merchant_reference = ANY($4::text[])) OR ({0}.kind = "
      "'refund' AND {0}.refund_reference = ANY($4::text[])))",
      b);
}

// The lines a request covers, as "FROM ... WHERE ..." over relation b (Lines). $1 provider, $2
// account, $3 bill date ('' any), $4 references, $5 value date. Without a bill date, named
// references are looked for in the bills of the kLookbackDays before the value date: a provider
// settles days, not months, after the trade, and no index on the references slows the
// million-line imports down. Named lines take their occurrence from the lines of their bill with
// the same transaction only (found by a second pass over just the bills they are in), not from a
// sort of a month of bills.
std::string Covered(bool named) {
  const std::string bills = fmt::format(
      "i.provider = $1 AND i.merchant_account = $2 AND i.state = 'current' AND NOT "
      "b.superseded AND ($3 = '' OR i.bill_date = NULLIF($3, '')::date) AND ($3 <> '' OR "
      "i.bill_date BETWEEN $5::date - {} AND $5::date)",
      kLookbackDays);
  if (!named) {
    return fmt::format("FROM {} WHERE cardinality($4::text[]) = 0 AND {}", Lines(bills),
                       kUnsettled);
  }
  const std::string same_transaction =
      "b.import_id = ANY(ARRAY(SELECT DISTINCT import_id FROM named)) AND (b.import_id, b.kind, "
      "b.provider_transaction_id, b.provider_refund_id) IN (SELECT import_id, kind, "
      "provider_transaction_id, provider_refund_id FROM named)";
  return fmt::format(
      "FROM (WITH named AS MATERIALIZED (SELECT b.import_id, b.kind, b.provider_transaction_id, "
      "b.provider_refund_id FROM recon_bill_items b JOIN recon_imports i ON i.id = b.import_id "
      "WHERE cardinality($4::text[]) > 0 AND {} AND {}) SELECT * FROM {}) b WHERE {}",
      bills, Named("b"), Lines(same_transaction), Named("b"));
}

bool ValidDate(std::string_view text) {
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  const int y = std::stoi(std::string(text.substr(0, 4)));
  const int m = std::stoi(std::string(text.substr(5, 2)));
  const int d = std::stoi(std::string(text.substr(8, 2)));
  if (m < 1 || m > 12 || d < 1 || d > kDays[m - 1]) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return !(m == 2 && d == 29 && !leap);
}

bool Printable(std::string_view text) {
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20; });
}

std::optional<Error> Check(const SettlementRequest& r) {
  auto bad = [](std::string m) { return Error(Errc::invalid_argument, std::move(m)); };
  if (r.provider.empty() || r.merchant_account.empty() || !Printable(r.provider) ||
      !Printable(r.merchant_account)) {
    return bad("provider and merchant_account are required");
  }
  if (r.provider_reference.empty() || r.provider_reference.size() > 128 ||
      !Printable(r.provider_reference)) {
    return bad("provider_reference must be 1..128 printable bytes");
  }
  if (!ValidDate(r.value_date)) return bad("value_date must be YYYY-MM-DD");
  if (!r.bill_date.empty() && !ValidDate(r.bill_date)) return bad("bill_date must be YYYY-MM-DD");
  const auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  if (r.currency.size() != 3 || !std::all_of(r.currency.begin(), r.currency.end(), upper)) {
    return bad("currency must be three upper-case letters");
  }
  if (r.references.empty() && r.bill_date.empty()) {
    return bad("name the covered references or the bill_date whose lines it settles");
  }
  if (r.references.size() > kReferencesMax) {
    return bad(fmt::format("at most {} references", kReferencesMax));
  }
  for (const auto& ref : r.references) {
    if (ref.empty() || ref.size() > 128 || !Printable(ref)) {
      return bad("references must be 1..128 printable bytes each");
    }
  }
  return std::nullopt;
}

asio::awaitable<Result<std::optional<Settlement>>> Existing(PgConnection& conn,
                                                            const SettlementRequest& r,
                                                            Deadline deadline) {
  LEDGER_CO_TRY(auto rows,
                co_await conn.Execute(
                    "SELECT id, value_date::text, currency, amount_minor, expected_minor, "
                    "line_count, transfer_id, coalesce(exception_id, 0) FROM recon_settlements "
                    "WHERE provider = $1 AND merchant_account = $2 AND provider_reference = $3",
                    Params().Add(r.provider).Add(r.merchant_account).Add(r.provider_reference),
                    deadline));
  if (rows.rows() == 0) co_return std::optional<Settlement>();
  Settlement s;
  s.provider = r.provider;
  s.merchant_account = r.merchant_account;
  s.provider_reference = r.provider_reference;
  LEDGER_CO_TRY(s.id, rows.GetInt64(0, 0));
  LEDGER_CO_TRY(auto value_date, rows.GetText(0, 1));
  s.value_date = value_date;
  LEDGER_CO_TRY(auto currency, rows.GetText(0, 2));
  s.currency = currency;
  LEDGER_CO_TRY(s.amount_minor, rows.GetInt64(0, 3));
  LEDGER_CO_TRY(s.expected_minor, rows.GetInt64(0, 4));
  LEDGER_CO_TRY(s.lines, rows.GetInt64(0, 5));
  LEDGER_CO_TRY(auto transfer_id, rows.GetText(0, 6));
  s.transfer_id = transfer_id;
  LEDGER_CO_TRY(s.exception_id, rows.GetInt64(0, 7));
  s.delta_minor = s.expected_minor - s.amount_minor;
  s.already_settled = true;
  co_return std::optional<Settlement>(std::move(s));
}

}  // namespace

asio::awaitable<RResult<Settlement>> SettleNet(db::PgPool& pool, ledger::PostgresLedger& ledger,
                                               const Options& options, SettlementRequest request,
                                               Deadline deadline) {
  if (auto bad = Check(request)) co_return *bad;
  const bool named = !request.references.empty();
  const std::string clearing =
      "provider_clearing:" + request.provider + ":" + request.merchant_account;
  const std::string bank = "bank:" + options.settlement_bank;
  ledger::ChartSpec spec;
  spec.currency = request.currency;
  spec.clearing.push_back({request.provider, request.merchant_account});
  spec.banks.push_back(options.settlement_bank);
  auto created = co_await ledger.CreateAccounts(ledger::StandardChart(spec), deadline);
  if (!created) co_return Error(created.error());

  std::string failure;  // a message for errors the transaction body returns as codes
  auto body = [&](PgConnection& conn) -> asio::awaitable<Result<Settlement>> {
    failure.clear();
    // One settlement line at a time per reference (the replay answers the first result), and a
    // whole-day settlement waits for an import of that day (the import's own lock key).
    const std::string reference_key = "recon:net:" + request.provider + ":" +
                                      request.merchant_account + ":" + request.provider_reference;
    // Named first: GCC 12 miscompiles a ?: temporary in a coroutine call's arguments.
    const std::string day_key =
        named ? std::string()
              : "recon:" + request.provider + ":" + request.merchant_account + ":" +
                    request.bill_date;
    LEDGER_CO_TRYV(co_await conn.Execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), "
        "CASE WHEN $2 = '' THEN NULL ELSE pg_advisory_xact_lock(hashtextextended($2, 0)) END",
        Params().Add(reference_key).Add(day_key), deadline));
    LEDGER_CO_TRY(auto existing, co_await Existing(conn, request, deadline));
    if (existing) co_return std::move(*existing);

    if (!named) {
      LEDGER_CO_TRY(auto day,
                    co_await conn.Execute(
                        "SELECT settled_on_import FROM recon_imports WHERE provider = $1 AND "
                        "merchant_account = $2 AND bill_date = $3::date AND state = 'current'",
                        Params().Add(request.provider).Add(request.merchant_account).Add(
                            request.bill_date),
                        deadline));
      if (day.rows() != 1) {
        failure = fmt::format("no current bill of {} for {}/{}", request.bill_date,
                              request.provider, request.merchant_account);
        co_return make_error_code(Errc::not_found);
      }
      LEDGER_CO_TRY(const bool settled, day.GetBool(0, 0));
      if (settled) {
        failure = fmt::format("the bill of {} was settled by its import (settle_on_import)",
                              request.bill_date);
        co_return make_error_code(Errc::already_settled);
      }
    }

    const std::string covered = Covered(named);
    const std::string references = ArrayLiteral(request.references);
    auto selection = [&] {
      return Params()
          .Add(request.provider)
          .Add(request.merchant_account)
          .Add(request.bill_date)
          .AddUntyped(references)
          .Add(request.value_date);
    };
    // Named first: GCC 12 miscompiles temporaries built in a coroutine call's arguments.
    // The covered lines' figures, one row; in named mode followed by one row per reference found
    // (the same scan: a settlement's references are many, the lines they name unindexed).
    const std::string summary_sql = fmt::format(
        "WITH c AS (SELECT {} AS net, b.import_id, b.currency, b.settled_on_import, CASE WHEN "
        "b.kind = 'payment' THEN b.merchant_reference ELSE b.refund_reference END AS ref {}) "
        "SELECT count(*), coalesce(sum(net), 0)::bigint, coalesce(max(import_id), 0), "
        "count(DISTINCT currency), coalesce(min(currency), '')::text, "
        "coalesce(bool_or(settled_on_import), false), NULL::text, 0 AS part FROM c{}",
        kNet, covered,
        named ? " UNION ALL SELECT 0, 0, 0, 0, '', false, ref, 1 FROM (SELECT DISTINCT ref FROM c) "
                "r ORDER BY part"
              : "");
    LEDGER_CO_TRY(auto summary, co_await conn.Execute(summary_sql, selection(), deadline));
    LEDGER_CO_TRY(const std::int64_t lines, summary.GetInt64(0, 0));
    LEDGER_CO_TRY(const std::int64_t expected, summary.GetInt64(0, 1));
    LEDGER_CO_TRY(const std::int64_t import_id, summary.GetInt64(0, 2));
    LEDGER_CO_TRY(const std::int64_t currencies, summary.GetInt64(0, 3));
    LEDGER_CO_TRY(const std::string_view currency, summary.GetText(0, 4));
    LEDGER_CO_TRY(const bool by_import, summary.GetBool(0, 5));
    if (named) {
      std::set<std::string, std::less<>> found;
      for (int i = 1; i < summary.rows(); ++i) {
        LEDGER_CO_TRY(const std::string_view ref, summary.GetText(i, 6));
        found.emplace(ref);
      }
      for (const auto& ref : request.references) {
        if (!found.contains(ref)) {
          failure = fmt::format("reference {} is in no current bill of {}/{}", ref,
                                request.provider, request.merchant_account);
          co_return make_error_code(Errc::not_found);
        }
      }
      if (by_import) {
        failure = "a covered line's bill was settled by its import (settle_on_import)";
        co_return make_error_code(Errc::already_settled);
      }
    }
    if (lines == 0) {
      failure = fmt::format("every line of the bill of {} is already settled", request.bill_date);
      co_return make_error_code(Errc::already_settled);
    }
    if (currencies != 1 || currency != request.currency) {
      failure = fmt::format("the covered lines are in {}, the settlement in {}",
                            currencies == 1 ? std::string(currency) : "several currencies",
                            request.currency);
      co_return make_error_code(Errc::invalid_argument);
    }

    LEDGER_CO_TRY(auto inserted,
                  co_await conn.Execute(
                      "INSERT INTO recon_settlements (provider, merchant_account, "
                      "provider_reference, value_date, currency, amount_minor, expected_minor, "
                      "line_count, principal) VALUES ($1, $2, $3, $4::date, $5, $6, $7, $8, $9) "
                      "RETURNING id",
                      Params()
                          .Add(request.provider)
                          .Add(request.merchant_account)
                          .Add(request.provider_reference)
                          .Add(request.value_date)
                          .Add(request.currency)
                          .Add(request.amount_minor)
                          .Add(expected)
                          .Add(lines)
                          .Add(request.principal),
                      deadline));
    Settlement s;
    LEDGER_CO_TRY(s.id, inserted.GetInt64(0, 0));
    s.provider = request.provider;
    s.merchant_account = request.merchant_account;
    s.provider_reference = request.provider_reference;
    s.value_date = request.value_date;
    s.currency = request.currency;
    s.amount_minor = request.amount_minor;
    s.expected_minor = expected;
    s.delta_minor = expected - request.amount_minor;
    s.lines = lines;

    // The database, not this code, decides whether a line or item was settled before: the
    // unique constraints on the line's provider transaction (any version of its bill) and on its
    // item refuse it even from a concurrent settlement.
    {
      const std::string take_sql =
          fmt::format("INSERT INTO recon_settlement_items (settlement_id, import_id, line_no, "
                      "our_kind, our_id, net_minor, provider, merchant_account, kind, "
                      "provider_transaction_id, provider_refund_id, occurrence) SELECT {}, "
                      "b.import_id, b.line_no, b.our_kind, b.our_id, {}, b.provider, "
                      "b.merchant_account, b.kind, b.provider_transaction_id, "
                      "b.provider_refund_id, b.occurrence {}",
                      s.id, kNet, covered);
      auto taken = co_await conn.Execute(take_sql, selection(), deadline);
      if (!taken) {
        if (taken.error() == db::Errc::unique_violation) {
          failure = fmt::format("a covered line or item is already settled ({})",
                                conn.last_error().constraint);
          co_return make_error_code(Errc::already_settled);
        }
        co_return taken.error();
      }
    }

    if (request.amount_minor != 0) {
      ledger::Transfer t;
      t.id.value = fmt::format("recon:net:{}", s.id);
      const auto clearing_id = ledger::AccountIdFor(request.currency, clearing);
      const auto bank_id = ledger::AccountIdFor(request.currency, bank);
      // Received: the clearing account gives it up to the bank; negative: the bank paid it back.
      t.debit_account_id = request.amount_minor > 0 ? bank_id : clearing_id;
      t.credit_account_id = request.amount_minor > 0 ? clearing_id : bank_id;
      t.amount = std::llabs(request.amount_minor);
      t.currency = request.currency;
      t.reason_code = kReasonSettlement;
      t.external_ref = fmt::format("recon_settlement:{}", request.provider_reference);
      std::vector<ledger::Transfer> transfers{t};
      LEDGER_CO_TRY(auto results,
                    co_await ledger.PostTransfersInTransaction(conn, transfers, deadline));
      if (results.front() != ledger::TransferResult::kOk) {
        failure = fmt::format("ledger refused {}: {}", t.id.value,
                              ledger::ToString(results.front()));
        co_return make_error_code(Errc::ledger_rejected);
      }
      s.transfer_id = t.id.value;
    }

    if (s.delta_minor != 0) {
      // What the clearing account keeps (expected minus received), named like every other
      // disagreement; it belongs to the newest import it covers.
      const std::string detail = fmt::format(
          "settlement {} of {} covers {} lines: expected {}, received {}", s.provider_reference,
          s.value_date, s.lines, s.expected_minor, s.amount_minor);
      LEDGER_CO_TRY(auto raised,
                    co_await conn.Execute(
                        "INSERT INTO recon_exceptions (import_id, class, status, priority, "
                        "provider, merchant_account, bill_date, reference, our_amount_minor, "
                        "their_amount_minor, delta_minor, currency, detail) SELECT id, "
                        "'settlement_mismatch', 'open', 3, provider, merchant_account, bill_date, "
                        "$2, $3, $4, $5, $6, $7 FROM recon_imports WHERE id = $1 RETURNING id",
                        Params()
                            .Add(import_id)
                            .Add(s.provider_reference)
                            .Add(s.expected_minor)
                            .Add(s.amount_minor)
                            .Add(s.delta_minor)
                            .Add(s.currency)
                            .Add(detail),
                        deadline));
      LEDGER_CO_TRY(s.exception_id, raised.GetInt64(0, 0));
    }
    LEDGER_CO_TRYV(co_await conn.Execute(
        "UPDATE recon_settlements SET transfer_id = $2, exception_id = NULLIF($3, 0) WHERE id = $1",
        Params().Add(s.id).Add(s.transfer_id).Add(s.exception_id), deadline));
    const std::string audit = fmt::format(
        "{} {} ref={} value_date={} lines={} expected={} received={} {}", s.provider,
        s.merchant_account, s.provider_reference, s.value_date, s.lines, s.expected_minor,
        s.amount_minor, s.currency);
    LEDGER_CO_TRYV(co_await conn.Execute(
        "INSERT INTO recon_audit (principal, action, object_type, object_id, detail) "
        "VALUES ($1, 'settle', 'reconciliation_settlement', $2, $3)",
        Params().Add(request.principal).Add(std::to_string(s.id)).Add(audit), deadline));
    co_return s;
  };
  db::TransactionOptions tx;
  auto done = co_await db::RunInTransaction(pool, deadline, tx, body);
  if (!done) {
    if (!failure.empty()) co_return Error(done.error(), failure);
    co_return Error(done.error());
  }
  co_return std::move(done).value();
}

asio::awaitable<Result<std::int64_t>> UnsettledNetMinor(PgConnection& conn,
                                                        std::string_view provider,
                                                        std::string_view merchant_account,
                                                        std::string_view currency,
                                                        Deadline deadline) {
  // Every import runs this over all the account's current bills. Only a bill with a line that
  // neither its own settlement row nor its item's settles (one still waiting, or carried over
  // from an earlier version) needs its lines' occurrences: the first pass finds those bills
  // without a sort, and only they are ranked, not the account's whole history.
  const std::string sql = fmt::format(
      "WITH waiting AS MATERIALIZED (SELECT DISTINCT b.import_id FROM recon_bill_items b JOIN "
      "recon_imports i ON i.id = b.import_id WHERE i.provider = $1 AND i.merchant_account = $2 "
      "AND i.state = 'current' AND NOT i.settled_on_import AND NOT b.superseded AND b.currency = "
      "$3 AND NOT EXISTS (SELECT 1 FROM recon_settlement_items s WHERE s.import_id = b.import_id "
      "AND s.line_no = b.line_no) AND (b.our_id IS NULL OR NOT EXISTS (SELECT 1 FROM "
      "recon_settlement_items s WHERE s.our_kind = b.our_kind AND s.our_id = b.our_id))) "
      "SELECT coalesce(sum({}), 0)::bigint FROM {} WHERE b.currency = $3 AND {}",
      kNet, Lines("b.import_id = ANY(ARRAY(SELECT import_id FROM waiting))"), kUnsettled);
  LEDGER_CO_TRY(auto rows, co_await conn.Execute(
                               sql, Params().Add(provider).Add(merchant_account).Add(currency),
                               deadline));
  co_return rows.GetInt64(0, 0);
}

}  // namespace paygate::recon
