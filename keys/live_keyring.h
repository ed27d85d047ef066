#pragma once

// LiveKeyring: the daemon's keyring, re-read without a restart (issue 7 "Rotation without
// downtime"). SIGHUP and a timer call Reload(), which re-reads every configured entry (a secret
// file replaced in place, e.g. a mounted Kubernetes secret, or a re-sealed envelope) and swaps the
// whole keyring at once; consumers that look a secret up per use (API key verification, webhook
// signing) see the new bytes at their next use. A reload that fails anywhere keeps the running
// keyring, so a half-written file never takes a secret away.
#include <memory>
#include <mutex>
#include <optional>

#include "config/paygate_config.pb.h"
#include "config/result.h"
#include "keys/keyring.h"
#include "keys/master_key.h"

namespace paygate::keys {

// Thread-safe: Current() may run on any thread concurrently with Reload().
class LiveKeyring {
 public:
  // Loads a validated keys section: the master key when configured (KeysConfigured), then every
  // entry. Without a section it is an empty keyring without a master key. Errors name the entry
  // (LoadMasterKey, LoadKeyring).
  static Result<std::shared_ptr<LiveKeyring>, KeysLoadError> Load(const config::v1::Keys& keys);
  // A keyring already in memory (tests); Reload() re-reads `keys`, which may be empty.
  static std::shared_ptr<LiveKeyring> FromKeyring(Keyring ring,
                                                  std::optional<MasterKey> master = std::nullopt,
                                                  config::v1::Keys keys = {});

  // The keyring in effect. Keep the pointer only for the current use: a reload replaces it.
  std::shared_ptr<const Keyring> Current() const;
  // The master key, or null when the configuration names none.
  const MasterKey* master() const { return master_ ? &*master_ : nullptr; }

  // Re-reads every entry of the keys section and swaps the keyring in. On error the running one
  // stays. The master key itself is not re-read (the data keys it wrapped depend on its bytes).
  Result<void, KeysLoadError> Reload();

 private:
  LiveKeyring(config::v1::Keys keys, std::optional<MasterKey> master, Keyring ring);

  const config::v1::Keys keys_;
  const std::optional<MasterKey> master_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Keyring> current_;  // Guarded by mutex_.
};

}  // namespace paygate::keys
