#pragma once

// Many-to-one net settlement (issue 8: "a net settlement line covering many orders"; "settlements
// to bank (Dr bank / Cr clearing)"). Schema: ledger/migrations/0011_recon_settlement.sql.
//
// By default an import posts its day's net (payments - refunds - fees of the bill) to the bank
// itself. An account with recon.accounts[].settle_on_import false leaves its lines unsettled
// until the provider's settlement line arrives: SettleNet records that line against the lines it
// covers (named references, or every unsettled line of a day's current bill), posts what the bank
// received as Dr bank / Cr clearing (transfer "recon:net:<settlement id>"), and raises a
// settlement_mismatch exception when the received amount is not the covered lines' net; resolving
// it with an adjustment (Reconciler::Resolve) brings the clearing account back to zero.
//
// A line's net is what the provider owes for it: its amount minus its fee for a payment; for a
// refund that went through (as the import counts it), minus its amount and its (returned) fee; 0
// for a refund that has not. Every class counts, not only matched lines: the provider settles its
// own bill, and the exceptions of the other classes hold the difference to our side.
//
// Each bill line and each of our items is settled at most once, enforced by the database's unique
// constraints (a concurrent second settlement fails with Errc::already_settled). A line is settled
// as the provider transaction it is (provider, merchant_account, kind, provider_transaction_id,
// provider_refund_id, and its occurrence among its bill's lines of that transaction, so that each
// copy of a repeated line settles once), not as its (import_id, line_no): a corrected version of
// a day's bill renumbers the same transactions under a new import, and those already settled stay
// settled, matched to one of our items or not (migration 0015). So a whole-day settlement after a
// correction takes only its genuinely new lines, naming a carried-over line answers
// already_settled, and UnsettledNetMinor counts none of them as waiting. A settled line whose
// corrected version changed its amount or fee keeps the net it was settled at; the difference
// shows as the import's drift. The same settlement line (provider reference) twice answers the
// first result and changes nothing.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "ledger/recon/reconciler.h"

namespace paygate::recon {

struct SettlementRequest {
  std::string provider;
  std::string merchant_account;
  std::string provider_reference;  // the settlement line's id at the provider, 1..128 bytes
  std::string value_date;          // "YYYY-MM-DD", when the bank received it
  std::string currency = "CNY";
  std::int64_t amount_minor = 0;   // received; negative when the provider debited the bank
  // Covered lines: payments by their merchant reference (out_trade_no), refunds by their refund
  // reference (out_refund_no), in the account's current bills (of bill_date when given). Empty:
  // every unsettled line of bill_date's current bill.
  std::vector<std::string> references;
  std::string bill_date;
  std::string principal;  // who records it (audited)
};

struct Settlement {
  std::int64_t id = 0;
  std::string provider, merchant_account, provider_reference, value_date, currency;
  std::int64_t amount_minor = 0;    // received
  std::int64_t expected_minor = 0;  // the covered lines' net
  std::int64_t delta_minor = 0;     // expected - received
  std::int64_t lines = 0;
  std::string transfer_id;          // empty when the amount is 0
  std::int64_t exception_id = 0;    // the settlement_mismatch exception; 0 when they agree
  bool already_settled = false;     // this settlement line was recorded before: nothing changed
};

// Records a settlement line in one transaction (see above). Errors: invalid_argument (malformed
// request, a currency the lines do not share), not_found (a reference in no current bill, no
// current bill of the day), already_settled (a line or item settled before, by a settlement line
// or by its import), ledger_rejected.
boost::asio::awaitable<RResult<Settlement>> SettleNet(db::PgPool& pool,
                                                      ledger::PostgresLedger& ledger,
                                                      const Options& options,
                                                      SettlementRequest request,
                                                      Deadline deadline);

// The net of the account's lines that still wait for their settlement line (imports with
// settle_on_import false): what the clearing account holds for them, which the import's balance
// reconciliation counts as explained rather than drift.
boost::asio::awaitable<Result<std::int64_t>> UnsettledNetMinor(db::PgConnection& conn,
                                                               std::string_view provider,
                                                               std::string_view merchant_account,
                                                               std::string_view currency,
                                                               Deadline deadline);

}  // namespace paygate::recon
