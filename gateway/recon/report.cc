#include "gateway/recon/report.h"

#include <cstdlib>

#include <fmt/format.h>

namespace paygate::gateway::recon {
namespace {

// Minor units as a decimal with two places ("-12.05"); the providers here all use cents/fen.
std::string Major(std::int64_t minor) {
  const char* sign = minor < 0 ? "-" : "";
  const std::uint64_t abs = minor < 0 ? static_cast<std::uint64_t>(-(minor + 1)) + 1
                                      : static_cast<std::uint64_t>(minor);
  return fmt::format("{}{}.{:02}", sign, abs / 100, abs % 100);
}

const api::v1::ReconciliationClass* FindClass(const api::v1::Reconciliation& r,
                                              std::string_view name) {
  for (const auto& c : r.classes()) {
    if (c.name() == name) return &c;
  }
  return nullptr;
}

}  // namespace

api::v1::Reconciliation ToProto(const paygate::recon::Report& report) {
  api::v1::Reconciliation out;
  out.set_id(report.import_id);
  out.set_provider(report.provider);
  out.set_merchant_account(report.merchant_account);
  out.set_bill_date(report.bill_date);
  out.set_version(report.version);
  out.set_state(report.state);
  out.set_already_imported(report.already_imported);
  out.set_lines(report.lines);
  out.set_currency(report.currency);
  out.set_payment_amount_minor(report.payment_amount_minor);
  out.set_refund_amount_minor(report.refund_amount_minor);
  out.set_fee_amount_minor(report.fee_amount_minor);
  out.set_clearing_balance_minor(report.clearing_balance_minor);
  out.set_explained_minor(report.explained_minor);
  out.set_drift_minor(report.drift_minor);
  out.set_diff_added(report.diff_added);
  out.set_diff_removed(report.diff_removed);
  out.set_diff_changed(report.diff_changed);
  for (std::string_view name : kClasses) {
    auto* c = out.add_classes();
    c->set_name(std::string(name));
    if (auto it = report.classes.find(std::string(name)); it != report.classes.end()) {
      c->set_count(it->second.count);
      c->set_our_amount_minor(it->second.our_amount_minor);
      c->set_their_amount_minor(it->second.their_amount_minor);
    }
  }
  return out;
}

api::v1::ReconciliationException ToProto(const paygate::recon::Exception& e) {
  api::v1::ReconciliationException out;
  out.set_id(e.id);
  out.set_reconciliation_id(e.import_id);
  out.set_class_(e.klass);
  out.set_status(e.status);
  out.set_priority(e.priority);
  out.set_provider(e.provider);
  out.set_merchant_account(e.merchant_account);
  out.set_bill_date(e.bill_date);
  out.set_our_kind(e.our_kind);
  out.set_our_id(e.our_id);
  out.set_reference(e.reference);
  if (e.our_amount_minor) out.set_our_amount_minor(*e.our_amount_minor);
  if (e.their_amount_minor) out.set_their_amount_minor(*e.their_amount_minor);
  out.set_delta_minor(e.delta_minor);
  out.set_currency(e.currency);
  out.set_detail(e.detail);
  out.set_assignee(e.assignee);
  out.set_resolution(e.resolution);
  out.set_adjustment_transfer_id(e.adjustment_transfer_id);
  return out;
}

api::v1::ReconciliationSettlement ToProto(const paygate::recon::Settlement& s) {
  api::v1::ReconciliationSettlement out;
  out.set_id(s.id);
  out.set_provider(s.provider);
  out.set_merchant_account(s.merchant_account);
  out.set_provider_reference(s.provider_reference);
  out.set_value_date(s.value_date);
  out.set_currency(s.currency);
  out.set_amount_minor(s.amount_minor);
  out.set_expected_minor(s.expected_minor);
  out.set_delta_minor(s.delta_minor);
  out.set_lines(s.lines);
  out.set_transfer_id(s.transfer_id);
  out.set_exception_id(s.exception_id);
  out.set_already_settled(s.already_settled);
  return out;
}

std::string FormatReportCsv(const api::v1::ReconciliationList& list) {
  std::string out =
      "bill_date,provider,merchant_account,reconciliation_id,version,class,count,"
      "our_amount_minor,their_amount_minor\n";
  for (const auto& r : list.reconciliations()) {
    auto row = [&](std::string_view klass, std::int64_t count, std::int64_t ours,
                   std::int64_t theirs) {
      out += fmt::format("{},{},{},{},{},{},{},{},{}\n", r.bill_date(), r.provider(),
                         r.merchant_account(), r.id(), r.version(), klass, count, ours, theirs);
    };
    for (std::string_view name : kClasses) {
      const auto* c = FindClass(r, name);
      row(name, c ? c->count() : 0, c ? c->our_amount_minor() : 0,
          c ? c->their_amount_minor() : 0);
    }
    // The bill's figures and the balance reconciliation, as pseudo-classes: a count where it is
    // one, the amount on the side it belongs to.
    row("bill_payments", r.lines(), 0, r.payment_amount_minor());
    row("bill_refunds", 0, 0, r.refund_amount_minor());
    row("bill_fees", 0, 0, r.fee_amount_minor());
    row("clearing_balance", 0, r.clearing_balance_minor(), 0);
    row("explained", 0, r.explained_minor(), 0);
    row("drift", 0, r.drift_minor(), 0);
  }
  return out;
}

std::string FormatReportTable(const api::v1::ReconciliationList& list) {
  std::string out;
  if (list.reconciliations().empty()) {
    return fmt::format("No reconciliation for {}.\n", list.bill_date());
  }
  for (const auto& r : list.reconciliations()) {
    out += fmt::format("{} {}/{}  reconciliation {} v{}  {} lines  {}\n", r.bill_date(),
                       r.provider(), r.merchant_account(), r.id(), r.version(), r.lines(),
                       r.currency());
    out += fmt::format("  {:<18} {:>8} {:>16} {:>16}\n", "class", "count", "ours", "theirs");
    for (std::string_view name : kClasses) {
      const auto* c = FindClass(r, name);
      out += fmt::format("  {:<18} {:>8} {:>16} {:>16}\n", name, c ? c->count() : 0,
                         Major(c ? c->our_amount_minor() : 0),
                         Major(c ? c->their_amount_minor() : 0));
    }
    out += fmt::format("  payments {}  refunds {}  fees {}\n", Major(r.payment_amount_minor()),
                       Major(r.refund_amount_minor()), Major(r.fee_amount_minor()));
    out += fmt::format("  clearing {}  explained {}  drift {}\n\n",
                       Major(r.clearing_balance_minor()), Major(r.explained_minor()),
                       Major(r.drift_minor()));
  }
  return out;
}

}  // namespace paygate::gateway::recon
