#pragma once

// The paygated process: wires configuration, the database pool, both listeners, signals and the
// readiness probe. Start-up refuses to continue (and says why) when a TLS file is unusable, the
// database is unreachable, its durability settings are unsafe, or its schema is not fully migrated.
//
// Shutdown is ordered (STYLE.md): on SIGTERM or SIGINT /readyz turns 503, the API listener stops
// accepting and drains in-flight requests within server.drain_timeout_ms, then the admin listener,
// then the database pool closes and the process exits 0. SIGHUP re-reads both listeners'
// certificates and keys, and the fraud rules files (a file that does not compile is refused and
// the running ruleset stays).
#include <chrono>
#include <memory>
#include <string>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "ledger/db/pg_pool.h"

namespace paygate::gateway {

// The database URL in effect: PAYGATE_DATABASE_URL when set, else database.url.
std::string EffectiveDatabaseUrl(const config::v1::Database& database);

// The database section with the URL in effect and the password read from database.password_file
// (which must not be readable by others), as the pool wants it. paygated and paygatectl open the
// database alike.
Result<db::PoolOptions, std::string> DatabasePoolOptions(const config::v1::Database& database);

// A running daemon. RunDaemon() uses it with process signals; tests drive it directly.
class Daemon {
 public:
  // Runs every start-up check and binds both listeners. On error nothing is left running.
  static Result<std::unique_ptr<Daemon>, std::string> Start(config::v1::Config config);
  ~Daemon();

  std::uint16_t api_port() const;
  std::uint16_t admin_port() const;
  // What SIGHUP does: reload certificates and keys of both listeners. Returns false if any failed
  // (the old ones stay in use).
  bool ReloadTls();
  // What SIGTERM does: begins the ordered shutdown. Returns at once; Wait() returns when it is
  // done.
  void BeginShutdown();
  // Blocks until shutdown completed; returns the process exit code.
  int Wait();

  class Impl;

 private:
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs paygated until SIGTERM/SIGINT, handling SIGHUP; returns the process exit code.
int RunDaemon(config::v1::Config config);

}  // namespace paygate::gateway
