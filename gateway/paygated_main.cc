// paygated: the payment gateway daemon. Holds only argument handling; everything else is in the
// gateway library so tests can run it in-process.
#include <csignal>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>

#include "config/loader.h"
#include "config/redact.h"
#include "gateway/daemon.h"

int main(int argc, char** argv) {
  // A closed log pipe or peer socket must surface as an error code, never kill the daemon
  // mid-drain.
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"paygated: payment and settlement gateway daemon"};
  std::string config_path;
  std::string check_path;
  std::string print_path;
  bool version = false;
  app.add_option("--config", config_path, "Run with this YAML configuration file");
  app.add_option(
      "--check-config", check_path,
      "Validate a configuration file and exit: 0 when valid, 1 with every error otherwise");
  app.add_option("--print-config", print_path,
                 "Print the effective configuration (defaults applied, secrets redacted) and exit");
  app.add_flag("--version", version, "Print the version and exit");
  CLI11_PARSE(app, argc, argv);

  if (version) {
    std::cout << "paygated " << PAYGATE_VERSION << "\n";
    return 0;
  }
  const std::string& path =
      !check_path.empty() ? check_path : (!print_path.empty() ? print_path : config_path);
  if (path.empty()) {
    std::cerr
        << "paygated: one of --config, --check-config, --print-config or --version is needed\n"
        << app.help();
    return 2;
  }
  auto loaded = paygate::config::LoadFile(path);
  if (!loaded) {
    std::cerr << path << ": invalid configuration:\n"
              << paygate::config::FormatErrors(loaded.error());
    return 1;
  }
  if (!check_path.empty()) {
    std::cout << path << ": configuration is valid\n";
    return 0;
  }
  if (!print_path.empty()) {
    std::cout << paygate::config::RedactedText(loaded.value());
    return 0;
  }
  return paygate::gateway::RunDaemon(std::move(loaded).value());
}
