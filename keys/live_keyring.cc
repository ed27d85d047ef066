#include "keys/live_keyring.h"

#include <utility>

namespace paygate::keys {

LiveKeyring::LiveKeyring(config::v1::Keys keys, std::optional<MasterKey> master, Keyring ring)
    : keys_(std::move(keys)),
      master_(std::move(master)),
      current_(std::make_shared<const Keyring>(std::move(ring))) {}

Result<std::shared_ptr<LiveKeyring>, KeysLoadError> LiveKeyring::Load(
    const config::v1::Keys& keys) {
  if (!KeysConfigured(keys)) {
    // Validation refuses entries without a master key, so there is nothing to load.
    return std::shared_ptr<LiveKeyring>(new LiveKeyring(keys, std::nullopt, Keyring{}));
  }
  BOOST_OUTCOME_TRY(master, LoadMasterKey(keys));
  BOOST_OUTCOME_TRY(ring, LoadKeyring(keys, master));
  return std::shared_ptr<LiveKeyring>(new LiveKeyring(keys, std::move(master), std::move(ring)));
}

std::shared_ptr<LiveKeyring> LiveKeyring::FromKeyring(Keyring ring, std::optional<MasterKey> master,
                                                      config::v1::Keys keys) {
  return std::shared_ptr<LiveKeyring>(
      new LiveKeyring(std::move(keys), std::move(master), std::move(ring)));
}

std::shared_ptr<const Keyring> LiveKeyring::Current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

Result<void, KeysLoadError> LiveKeyring::Reload() {
  // No section (or a keyring built in memory): nothing configured to re-read.
  if (!master_ || !KeysConfigured(keys_)) return outcome::success();
  BOOST_OUTCOME_TRY(ring, LoadKeyring(keys_, *master_));
  auto fresh = std::make_shared<const Keyring>(std::move(ring));
  std::lock_guard lock(mutex_);
  current_ = std::move(fresh);
  return outcome::success();
}

}  // namespace paygate::keys
