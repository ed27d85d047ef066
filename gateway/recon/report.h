#pragma once

// The engine's reports and exceptions as API messages, and the day's reports as the table or CSV
// `paygatectl recon report` prints. The API and the CLI both go through ToProto, so they show the
// same numbers.
#include <string>

#include "gateway/api/v1/recon.pb.h"
#include "ledger/recon/reconciler.h"
#include "ledger/recon/settlement.h"

namespace paygate::gateway::recon {

// Classes in the order reports list them (every one, zeros included, so tables line up).
inline constexpr std::string_view kClasses[] = {"matched",         "missing_ours",
                                                "missing_provider", "amount_mismatch",
                                                "status_mismatch", "timing",
                                                "duplicate"};

api::v1::Reconciliation ToProto(const paygate::recon::Report& report);
api::v1::ReconciliationException ToProto(const paygate::recon::Exception& exception);
api::v1::ReconciliationSettlement ToProto(const paygate::recon::Settlement& settlement);

// One row per import and class: bill_date, provider, merchant_account, reconciliation_id,
// version, class, count, our_amount_minor, their_amount_minor; then per import the figures
// (lines, payments, refunds, fees, clearing, explained, drift). Amounts in minor units.
std::string FormatReportCsv(const api::v1::ReconciliationList& list);
// The same as an aligned text table, amounts in major units with two decimals.
std::string FormatReportTable(const api::v1::ReconciliationList& list);

}  // namespace paygate::gateway::recon
