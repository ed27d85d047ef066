#pragma once

// The paygated process: wires configuration, the database pool, both listeners, signals and the
// readiness probe. Start-up refuses to continue (and says why) when a TLS file is unusable, the
// database is unreachable, its durability settings are unsafe, its schema is not fully migrated,
// or the master key or a key of the keyring cannot be loaded (a group- or world-readable key file
// included).
//
// Shutdown is ordered (STYLE.md): on SIGTERM or SIGINT /readyz turns 503, the API listener stops
// accepting and drains in-flight requests within server.drain_timeout_ms, then the admin listener,
// then the database pool closes and the process exits 0. SIGHUP re-reads both listeners'
// certificates and keys, the fraud rules files (a file that does not compile is refused and
// the running ruleset stays), the keyring and the data keys of field encryption.
#include <chrono>
#include <memory>
#include <string>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "keys/field_cipher.h"
#include "keys/keyring.h"
#include "ledger/db/pg_pool.h"

namespace paygate::gateway {

// The database URL in effect: PAYGATE_DATABASE_URL when set, else database.url.
std::string EffectiveDatabaseUrl(const config::v1::Database& database);

// The database section with the URL in effect and the password database.password_key_id names in
// `ring` (paygated's keyring; without one, paygatectl's, loaded from the configuration), as the
// pool wants it. paygated and paygatectl open the database alike.
Result<db::PoolOptions, std::string> DatabasePoolOptions(const config::v1::Config& config,
                                                         const keys::Keyring* ring = nullptr);

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
  // What SIGHUP and the keys.reload_interval_s timer do: re-read the keyring's files and envelopes
  // and add the data key versions rotated in since the last load. Returns false if either failed
  // (what was loaded stays in use).
  bool ReloadKeys();
  // The cipher of personal data (keys.pii_data_key) services encrypt with; null without a keys
  // section.
  std::shared_ptr<keys::FieldCipher> pii_cipher() const;
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
