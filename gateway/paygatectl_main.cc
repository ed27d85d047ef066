// paygatectl: the operator CLI. Holds only argument handling; commands live in the gateway library.
#include <iostream>

#include <CLI/CLI.hpp>

#include "config/loader.h"
#include "gateway/ctl.h"

int main(int argc, char** argv) {
  CLI::App app{"paygatectl: operator commands for paygate"};
  app.require_subcommand(1);
  std::string config_path;
  auto* migrate = app.add_subcommand("migrate", "Apply pending SQL migrations to the database");
  migrate->add_option("--config", config_path, "paygated configuration file (its database section)")
      ->required();
  auto* version = app.add_subcommand("version", "Print the version");
  CLI11_PARSE(app, argc, argv);

  if (version->parsed()) {
    std::cout << "paygatectl " << PAYGATE_VERSION << "\n";
    return 0;
  }
  auto loaded = paygate::config::LoadFile(config_path);
  if (!loaded) {
    std::cerr << config_path << ": invalid configuration:\n"
              << paygate::config::FormatErrors(loaded.error());
    return 1;
  }
  if (migrate->parsed()) return paygate::gateway::RunMigrate(loaded.value());
  return 2;
}
