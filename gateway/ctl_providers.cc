// paygatectl's provider diagnostics (issue 6): verifying a captured callback with the provider's
// real rules, and reading a bill file with its real-format parser. Both work offline: nothing is
// sent to a provider and no database is opened.
#include <chrono>
#include <iostream>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include "adapters/bill_files.h"
#include "config/file.h"
#include "gateway/ctl.h"
#include "gateway/ctl_output.pb.h"
#include "gateway/payments/adapter_factory.h"

namespace paygate::gateway {
namespace {

std::string ToJsonLine(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

// "Name: value" lines as captured (curl -D, a proxy's log); a request line and blank lines are
// skipped, names are lower-cased, values trimmed. Header values are never altered otherwise: the
// signature covers some of them.

std::vector<std::pair<std::string, std::string>> ParseHeaderLines(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> headers;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::size_t colon = line.find(':');
    if (line.empty() || colon == std::string_view::npos || colon == 0) continue;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name.find(' ') != std::string::npos) continue;  // "POST /path HTTP/1.1"
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    headers.emplace_back(std::move(name), std::string(value));
  }
  return headers;
}

}  // namespace

int RunProviderVerifyCallback(const config::v1::Config& config, const VerifyCallbackArgs& args) {
  const std::string command = "paygatectl provider verify-callback";
  const config::v1::ProviderAccount* account = nullptr;
  int matches = 0;
  for (const auto& candidate : config.providers()) {
    if (candidate.provider() != args.provider) continue;
    if (!args.merchant_account.empty() && candidate.merchant_account() != args.merchant_account) {
      continue;
    }
    account = &candidate;
    ++matches;
  }
  if (matches == 0) {
    std::cerr << fmt::format("{}: the configuration has no {} account{}\n", command, args.provider,
                             args.merchant_account.empty() ? "" : " " + args.merchant_account);
    return 2;
  }
  if (matches > 1) {
    std::cerr << fmt::format("{}: several {} accounts: name one with --merchant-account\n",
                             command, args.provider);
    return 2;
  }
  const auto headers = config::ReadWholeFile(args.headers_file);
  const auto body = config::ReadWholeFile(args.body_file);
  if (!headers || !body) {
    std::cerr << fmt::format("{}: cannot read {}\n", command,
                             !headers ? args.headers_file : args.body_file);
    return 2;
  }
  payments::AdapterClock clock;
  if (args.at_unix) {
    const auto at = std::chrono::system_clock::time_point(std::chrono::seconds(*args.at_unix));
    clock = [at] { return at; };
  }
  auto adapter = payments::MakeAdapter(config, *account, clock);
  if (!adapter) {
    std::cerr << fmt::format("{}: {} account {}: {}\n", command, account->provider(),
                             account->merchant_account(), adapter.error());
    return 2;
  }
  adapters::CallbackRequest request;
  request.merchant_account = account->merchant_account();
  request.headers = ParseHeaderLines(*headers);
  request.body = *body;
  auto event = adapter.value()->VerifyCallback(request);
  if (!event) {
    std::cerr << fmt::format("{}: verification failed: {}\n", command, event.error());
    return 1;
  }
  const adapters::CallbackEvent& e = event.value();
  ctl::v1::DecodedCallback out;
  out.set_provider(account->provider());
  out.set_merchant_account(account->merchant_account());
  out.set_kind(e.kind == adapters::CallbackEvent::Kind::kPayment ? "payment" : "refund");
  out.set_reference(e.reference);
  out.set_outcome(std::string(adapters::OutcomeName(e.result.outcome)));
  out.set_provider_transaction_id(e.result.provider_transaction_id);
  out.set_amount_minor(e.result.amount_minor);
  out.set_decline_code(e.result.decline_code);
  out.set_decline_message(e.result.decline_message);
  out.set_dedup_key(e.dedup_key);
  std::cout << ToJsonLine(out) << "\n";
  return 0;
}

int RunReconParse(const std::string& provider, const std::string& file) {
  const auto bytes = config::ReadWholeFile(file);
  if (!bytes) {
    std::cerr << fmt::format("paygatectl recon parse: cannot read {}\n", file);
    return 2;
  }
  auto parsed = adapters::ParseBillFile(provider, file, *bytes);
  if (!parsed) {
    std::cerr << fmt::format("paygatectl recon parse: {}: {}\n", file, parsed.error());
    return 1;
  }
  for (const adapters::bill::Record& r : parsed.value().records) {
    ctl::v1::BillRecord line;
    line.set_kind(r.kind == adapters::bill::Record::Kind::kPayment ? "payment" : "refund");
    line.set_provider(r.provider);
    line.set_merchant_id(r.merchant_id);
    line.set_provider_transaction_id(r.provider_transaction_id);
    line.set_merchant_reference(r.merchant_reference);
    line.set_provider_refund_id(r.provider_refund_id);
    line.set_refund_reference(r.refund_reference);
    line.set_amount_minor(r.amount_minor);
    line.set_fee_minor(r.fee_minor);
    line.set_currency(r.currency);
    line.set_occurred_at(r.occurred_at);
    line.set_status(r.status);
    std::cout << ToJsonLine(line) << "\n";
  }
  const adapters::bill::Totals& t = parsed.value().totals;
  ctl::v1::BillTotals totals;
  totals.set_records(static_cast<std::int64_t>(parsed.value().records.size()));
  totals.set_payment_count(t.payment_count);
  totals.set_payment_amount_minor(t.payment_amount_minor);
  totals.set_refund_count(t.refund_count);
  totals.set_refund_amount_minor(t.refund_amount_minor);
  totals.set_fee_amount_minor(t.fee_amount_minor);
  std::cout << ToJsonLine(totals) << "\n";
  return 0;
}

}  // namespace paygate::gateway
