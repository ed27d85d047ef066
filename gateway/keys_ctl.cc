#include "gateway/keys_ctl.h"

#include <iostream>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "gateway/ctl_database.h"
#include "gateway/edge/asio_fwd.h"
#include "gateway/payouts/beneficiary.h"
#include "keys/data_keys.h"
#include "keys/keyring.h"
#include "keys/secret_file.h"

namespace paygate::gateway {

namespace asio = edge::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto kCommandTime = 1min;

// The configured master key, or an exit code after printing why there is none.
std::optional<keys::MasterKey> Master(const config::v1::Config& config, std::string_view name) {
  if (config.keys().master_key().file().empty()) {
    std::cerr << "paygatectl " << name << ": the configuration has no keys.master_key\n";
    return std::nullopt;
  }
  auto master = keys::LoadMasterKey(config.keys());
  if (!master) {
    std::cerr << "paygatectl " << name << ": " << master.error().message << "\n";
    return std::nullopt;
  }
  return std::move(master).value();
}

}  // namespace

std::vector<keys::EncryptedColumn> EncryptedColumns(const config::v1::Config& config) {
  // Payouts (issue 7): the beneficiary columns, AAD "payouts/<id>/<column>" (BeneficiaryAad).
  std::vector<keys::EncryptedColumn> columns;
  for (const std::string_view column : payouts::kBeneficiaryColumns) {
    columns.push_back({"payouts", "id", std::string(column), "payouts",
                       config.keys().pii_data_key()});
  }
  return columns;
}

int RunKeysList(const config::v1::Config& config) {
  if (!config.keys().master_key().file().empty()) {
    std::cout << fmt::format("master key {} v{} ({})\n", config.keys().master_key().id(),
                             config.keys().master_key().version(),
                             config.keys().master_key().file());
  }
  for (const auto& entry : config.keys().entries()) {
    std::cout << fmt::format("keyring {} v{} {} {}\n", entry.id(), entry.version(),
                             entry.envelope_file().empty() ? "file" : "envelope",
                             entry.envelope_file().empty() ? entry.file() : entry.envelope_file());
  }
  return WithDatabase(config, "keys list",
                      [&](db::PgPool& pool, asio::io_context&) -> asio::awaitable<int> {
                        auto list = co_await keys::ListDataKeys(pool, db::Clock::now() + kCommandTime);
                        if (!list) {
                          std::cerr << "paygatectl keys list: " << list.error().message() << "\n";
                          co_return 1;
                        }
                        for (const auto& key : list.value()) {
                          std::cout << fmt::format("data key {} v{} wrapped by {} v{} created {}\n",
                                                   key.name, key.version, key.master_key_id,
                                                   key.master_key_version, key.created_at);
                        }
                        co_return 0;
                      });
}

int RunKeysRotate(const config::v1::Config& config, const std::string& name) {
  auto master = Master(config, "keys rotate");
  if (!master) return 1;
  return WithDatabase(config, "keys rotate",
                      [&](db::PgPool& pool, asio::io_context&) -> asio::awaitable<int> {
                        auto version = co_await keys::RotateDataKey(
                            pool, *master, name, db::Clock::now() + kCommandTime);
                        if (!version) {
                          std::cerr << "paygatectl keys rotate: " << version.error().message()
                                    << "\n";
                          co_return 1;
                        }
                        std::cout << fmt::format("data key {} now at v{}\n", name, version.value());
                        co_return 0;
                      });
}

int RunKeysRewrap(const config::v1::Config& config, const RewrapArgs& args,
                  const std::vector<keys::EncryptedColumn>& columns) {
  auto master = Master(config, "keys rewrap");
  if (!master) return 1;
  std::vector<keys::EncryptedColumn> selected;
  for (const auto& column : columns) {
    if (args.column.empty() || args.column == column.table + "." + column.blob_column) {
      selected.push_back(column);
    }
  }
  if (selected.empty()) {
    std::cerr << "paygatectl keys rewrap: no registered encrypted column"
              << (args.column.empty() ? "" : " named " + args.column) << "\n";
    return args.column.empty() ? 0 : 1;
  }
  if (args.after_id && args.column.empty()) {
    std::cerr << "paygatectl keys rewrap: --after needs --column\n";
    return 1;
  }
  return WithDatabase(
      config, "keys rewrap", [&](db::PgPool& pool, asio::io_context&) -> asio::awaitable<int> {
        std::map<std::string, std::shared_ptr<keys::FieldCipher>> ciphers;
        int exit_code = 0;
        for (const auto& column : selected) {
          if (!ciphers.contains(column.data_key)) {
            auto cipher = co_await keys::LoadFieldCipher(pool, *master, column.data_key,
                                                         db::Clock::now() + kCommandTime);
            if (!cipher) {
              std::cerr << "paygatectl keys rewrap: data key " << column.data_key << ": "
                        << cipher.error().message() << "\n";
              co_return 1;
            }
            ciphers.emplace(column.data_key, cipher.value());
          }
          keys::RewrapOptions options;
          options.batch_size = args.batch_size;
          options.after_id = args.after_id;
          options.batches_max = args.batches_max;
          options.pause = std::chrono::milliseconds(args.pause_ms);
          const keys::FieldCipher& cipher = *ciphers.at(column.data_key);
          auto report = co_await keys::RewrapColumn(pool, cipher, column, options);
          if (!report) {
            std::cerr << "paygatectl keys rewrap: " << column.table << "." << column.blob_column
                      << ": " << report.error().message() << "\n";
            co_return 1;
          }
          const auto& r = report.value();
          std::cout << fmt::format(
              "{}.{} -> {} v{}: rewrapped={} failed={} batches={} remaining={} last_id={}\n",
              column.table, column.blob_column, column.data_key, cipher.current_version(),
              r.rewrapped, r.failed, r.batches, r.remaining, r.last_id);
          if (r.remaining > 0) exit_code = 3;
        }
        co_return exit_code;
      });
}

int RunKeysSeal(const config::v1::Config& config, const std::string& id, std::uint32_t version,
                const std::string& secret_file) {
  auto master = Master(config, "keys seal");
  if (!master) return 1;
  auto secret = keys::ReadSecretFile(secret_file);
  if (!secret) {
    std::cerr << "paygatectl keys seal: " << secret_file << ": " << secret.error().message()
              << "\n";
    return 1;
  }
  auto envelope = keys::SealEnvelope(*master, id, version, secret.value());
  if (!envelope) {
    std::cerr << "paygatectl keys seal: " << envelope.error().message() << "\n";
    return 1;
  }
  std::cout << envelope.value() << "\n";
  return 0;
}

}  // namespace paygate::gateway
