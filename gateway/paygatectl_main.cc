// paygatectl: the operator CLI. Holds only argument handling; commands live in the gateway library.
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>

#include "config/loader.h"
#include "gateway/ctl.h"
#include "gateway/keys_ctl.h"
#include "gateway/recon/ctl.h"
#include "gateway/risk_ctl.h"

int main(int argc, char** argv) {
  CLI::App app{"paygatectl: operator commands for paygate"};
  app.require_subcommand(1);
  std::string config_path;
  auto* migrate = app.add_subcommand("migrate", "Apply pending SQL migrations to the database");
  migrate->add_option("--config", config_path, "paygated configuration file (its database section)")
      ->required();
  auto* ledger = app.add_subcommand("ledger", "Read and check the double-entry ledger");
  ledger->require_subcommand(1);
  auto* verify = ledger->add_subcommand(
      "verify",
      "Recompute balances from the journal and check the hash chain (exit 3 on differences)");
  auto* trial =
      ledger->add_subcommand("trial-balance", "Every account of a currency and the totals");
  std::string currency;
  std::optional<std::string> at;
  trial->add_option("--currency", currency, "ISO 4217 code, e.g. CNY")->required();
  trial->add_option("--at", at, "Instant, UTC: 2026-11-27T03:00:00Z (default: now)");
  auto* statement =
      ledger->add_subcommand("statement", "An account's journal with running balances");
  std::int64_t account = 0;
  std::int32_t limit = 100;
  statement->add_option("account", account, "Account id")->required();
  statement->add_option("--limit", limit, "Lines, 1..1000")->check(CLI::Range(1, 1000));
  auto* close_account =
      ledger->add_subcommand("close-account", "Refuse new postings to an account");
  auto* reopen_account =
      ledger->add_subcommand("reopen-account", "Accept postings to a closed account again");
  for (auto* command : {close_account, reopen_account}) {
    command->add_option("account", account, "Account id")->required();
  }
  for (auto* command : {verify, trial, statement, close_account, reopen_account}) {
    command->add_option("--config", config_path, "paygated configuration file")->required();
  }

  auto* provider = app.add_subcommand("provider", "Provider diagnostics (offline)");
  provider->require_subcommand(1);
  auto* verify_callback = provider->add_subcommand(
      "verify-callback", "Verify and decode a captured provider callback (exit 1 if it fails)");
  paygate::gateway::VerifyCallbackArgs callback;
  verify_callback->add_option("--provider", callback.provider, "wechatpay, alipay, unionpay, sandbox")
      ->required();
  verify_callback->add_option("--merchant-account", callback.merchant_account,
                              "The account, when the provider has several");
  verify_callback->add_option("--headers", callback.headers_file, "File of 'Name: value' lines")
      ->required();
  verify_callback->add_option("--body", callback.body_file, "File of the raw body")->required();
  verify_callback->add_option("--at", callback.at_unix,
                              "Judge the signature's freshness at this Unix time (default: now)");
  verify_callback->add_option("--config", config_path, "paygated configuration file")->required();

  auto* recon = app.add_subcommand("recon", "Reconciliation tools");
  recon->require_subcommand(1);
  auto* recon_parse = recon->add_subcommand(
      "parse", "Print a bill file's normalised records as JSON lines, then the checked totals");
  std::string bill_provider;
  std::string bill_file;
  recon_parse->add_option("--provider", bill_provider, "wechatpay, alipay, unionpay")->required();
  recon_parse->add_option("file", bill_file, "The bill file, as downloaded")->required();
  auto* recon_import = recon->add_subcommand(
      "import", "Import and reconcile a bill file (streamed, with a progress bar on stderr)");
  paygate::gateway::recon::ReconImportArgs import_args;
  recon_import->add_option("file", import_args.file, "The bill file, as downloaded")->required();
  recon_import->add_option("--provider", import_args.provider, "wechatpay, alipay, unionpay")
      ->required();
  recon_import->add_option("--account", import_args.merchant_account, "providers[].merchant_account")
      ->required();
  recon_import->add_option("--date", import_args.bill_date, "The bill's day: YYYY-MM-DD")
      ->required();
  recon_import->add_flag("--no-progress", [&](std::int64_t) { import_args.progress = false; },
                         "No progress bar");
  auto* recon_report = recon->add_subcommand(
      "report", "A day's reconciliations per provider account and class (as the API reports them)");
  std::string report_date;
  bool report_csv = false;
  recon_report->add_option("date", report_date, "The bill day: YYYY-MM-DD")->required();
  recon_report->add_flag("--csv", report_csv, "CSV instead of a table");
  auto* recon_settle = recon->add_subcommand(
      "settle", "Record a provider's net settlement line covering many bill lines (audited)");
  paygate::gateway::recon::ReconSettleArgs settle_args;
  recon_settle->add_option("--provider", settle_args.provider, "wechatpay, alipay, unionpay")
      ->required();
  recon_settle
      ->add_option("--account", settle_args.merchant_account, "providers[].merchant_account")
      ->required();
  recon_settle->add_option("--reference", settle_args.provider_reference,
                           "The settlement line's id at the provider")
      ->required();
  recon_settle->add_option("--value-date", settle_args.value_date, "When the bank received it")
      ->required();
  recon_settle->add_option("--amount", settle_args.amount, "Received, e.g. 129.22")->required();
  recon_settle->add_option("--currency", settle_args.currency, "Default CNY");
  recon_settle->add_option("--date", settle_args.bill_date,
                           "Settle every unsettled line of this bill day");
  recon_settle->add_option("references", settle_args.references,
                           "Covered out_trade_no / out_refund_no (instead of --date)");
  for (auto* command : {recon_import, recon_report, recon_settle}) {
    command->add_option("--config", config_path, "paygated configuration file")->required();
  }

  // Fraud rules (issue 5): lists and backtests.
  auto* risk = app.add_subcommand("risk", "Fraud rules: lists and backtests");
  risk->require_subcommand(1);
  auto* risk_list = risk->add_subcommand("list", "Show and change the rules' lists (audited)");
  risk_list->require_subcommand(1);
  paygate::gateway::RiskListArgs list_args;
  auto* list_add = risk_list->add_subcommand("add", "Add an item (personal data is hashed)");
  list_add->add_option("name", list_args.list, "List name")->required();
  list_add->add_option("value", list_args.value, "The item")->required();
  list_add->add_option("--kind", list_args.kind, "Kind, for a list the ruleset does not declare");
  list_add->add_option("--expires", list_args.expires_at, "Expiry, UTC: 2026-11-27T03:00:00Z");
  list_add->add_option("--note", list_args.note, "Why");
  auto* list_remove = risk_list->add_subcommand("remove", "Remove an item");
  list_remove->add_option("name", list_args.list, "List name")->required();
  list_remove->add_option("value", list_args.value, "The item")->required();
  for (auto* command : {list_add, list_remove}) {
    command->add_flag("--hashed", list_args.hashed, "The value is already the stored form (h1:...)");
  }
  auto* list_show = risk_list->add_subcommand("show", "Every list, or one list's items");
  list_show->add_option("name", list_args.list, "List name");
  auto* backtest = risk->add_subcommand(
      "backtest", "Replay stored events through a ruleset; print how outcomes would change");
  std::string backtest_rules, backtest_from, backtest_to;
  backtest->add_option("ruleset", backtest_rules, "Rules file")->required();
  backtest->add_option("--from", backtest_from, "UTC, inclusive: 2026-11-01T00:00:00Z")->required();
  backtest->add_option("--to", backtest_to, "UTC, exclusive")->required();
  for (auto* command : {list_add, list_remove, list_show, backtest}) {
    command->add_option("--config", config_path, "paygated configuration file")->required();
  }
  // Keys (issue 7): data key rotation, rewrap, the list of keys, envelopes.
  auto* keys = app.add_subcommand("keys", "Data keys, rewrap of encrypted columns, envelopes");
  keys->require_subcommand(1);
  auto* keys_list = keys->add_subcommand("list", "Key ids and versions (never key bytes)");
  auto* keys_rotate = keys->add_subcommand("rotate", "Add a new version of a data key");
  std::string key_name;
  keys_rotate->add_option("name", key_name, "Data key name")->required();
  auto* keys_rewrap = keys->add_subcommand(
      "rewrap", "Re-encrypt encrypted columns under the current data key versions (exit 3 if rows remain)");
  paygate::gateway::RewrapArgs rewrap_args;
  keys_rewrap->add_option("--batch", rewrap_args.batch_size, "Rows per transaction")
      ->check(CLI::Range(1, 100000));
  keys_rewrap->add_option("--column", rewrap_args.column, "Only this column: table.column");
  keys_rewrap->add_option("--after", rewrap_args.after_id, "Resume after this row id (--column)");
  keys_rewrap->add_option("--batches", rewrap_args.batches_max, "Stop after N batches (0: all)");
  keys_rewrap->add_option("--pause-ms", rewrap_args.pause_ms, "Pause between batches")
      ->check(CLI::Range(0, 60000));
  auto* keys_seal =
      keys->add_subcommand("seal", "Print the envelope of a secret file under the master key");
  std::string seal_id, seal_file;
  std::uint32_t seal_version = 1;
  keys_seal->add_option("--id", seal_id, "Keyring id")->required();
  keys_seal->add_option("--version", seal_version, "Keyring version")->check(CLI::Range(1, 2147483647));
  keys_seal->add_option("--in", seal_file, "File holding the secret (mode 0600)")->required();
  for (auto* command : {keys_list, keys_rotate, keys_rewrap, keys_seal}) {
    command->add_option("--config", config_path, "paygated configuration file")->required();
  }
  auto* version = app.add_subcommand("version", "Print the version");
  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::cout << "paygatectl " << PAYGATE_VERSION << "\n";
    return 0;
  }
  if (recon_parse->parsed()) return paygate::gateway::RunReconParse(bill_provider, bill_file);
  auto loaded = paygate::config::LoadFile(config_path);
  if (!loaded) {
    std::cerr << config_path << ": invalid configuration:\n"
              << paygate::config::FormatErrors(loaded.error());
    return 1;
  }
  if (migrate->parsed()) return paygate::gateway::RunMigrate(loaded.value());
  if (recon_import->parsed()) {
    return paygate::gateway::recon::RunReconImport(loaded.value(), import_args, std::cout,
                                                   std::cerr);
  }
  if (recon_settle->parsed()) {
    return paygate::gateway::recon::RunReconSettle(loaded.value(), settle_args, std::cout,
                                                   std::cerr);
  }
  if (recon_report->parsed()) {
    return paygate::gateway::recon::RunReconReport(loaded.value(), report_date, report_csv,
                                                   std::cout, std::cerr);
  }
  if (verify_callback->parsed()) {
    return paygate::gateway::RunProviderVerifyCallback(loaded.value(), callback);
  }
  if (verify->parsed()) return paygate::gateway::RunLedgerVerify(loaded.value());
  if (trial->parsed()) {
    return paygate::gateway::RunLedgerTrialBalance(loaded.value(), currency, at);
  }
  if (statement->parsed()) {
    return paygate::gateway::RunLedgerStatement(loaded.value(), account, limit);
  }
  if (close_account->parsed()) {
    return paygate::gateway::RunLedgerSetClosed(loaded.value(), account, true);
  }
  if (list_add->parsed()) return paygate::gateway::RunRiskListAdd(loaded.value(), list_args);
  if (list_remove->parsed()) {
    return paygate::gateway::RunRiskListRemove(loaded.value(), list_args);
  }
  if (list_show->parsed()) return paygate::gateway::RunRiskListShow(loaded.value(), list_args.list);
  if (backtest->parsed()) {
    return paygate::gateway::RunRiskBacktest(loaded.value(), backtest_rules, backtest_from,
                                             backtest_to);
  }
  if (keys_list->parsed()) return paygate::gateway::RunKeysList(loaded.value());
  if (keys_rotate->parsed()) return paygate::gateway::RunKeysRotate(loaded.value(), key_name);
  if (keys_rewrap->parsed()) {
    return paygate::gateway::RunKeysRewrap(loaded.value(), rewrap_args,
                                           paygate::gateway::EncryptedColumns(loaded.value()));
  }
  if (keys_seal->parsed()) {
    return paygate::gateway::RunKeysSeal(loaded.value(), seal_id, seal_version, seal_file);
  }
  if (reopen_account->parsed()) {
    return paygate::gateway::RunLedgerSetClosed(loaded.value(), account, false);
  }
  return 2;
}
