#pragma once

// paygatectl keys ... (issue 7): data key rotation, rewrap of encrypted columns, the list of keys
// (never their bytes), and sealing secrets into envelope files for the keyring.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/paygate_config.pb.h"
#include "keys/rewrap.h"

namespace paygate::gateway {

// The one list of encrypted columns (STYLE.md "one list of what is compiled in"): every column of
// FieldCipher blobs, so `paygatectl keys rewrap` moves them all. The module owning a table adds its
// columns here (payouts: beneficiary fields). Personal data is under the configured
// keys.pii_data_key, the data key whose cipher the daemon encrypts it with.
std::vector<keys::EncryptedColumn> EncryptedColumns(const config::v1::Config& config);

// `paygatectl keys list`: the keyring's ids and versions (from the configuration) and every data
// key version in the database, with the master key that wrapped it. Exit 0, 1 on errors.
int RunKeysList(const config::v1::Config& config);

// `paygatectl keys rotate NAME`: adds the next version of data key NAME; daemons write under it
// once they reload (SIGHUP, periodic reload, or on meeting a blob of the new version). Exit 0, 1.
int RunKeysRotate(const config::v1::Config& config, const std::string& name);

struct RewrapArgs {
  std::int32_t batch_size = 500;
  std::optional<std::string> after_id;  // resume one column after this id (with --column)
  std::string column;                   // "table.column"; empty: every registered column
  std::int64_t batches_max = 0;
  std::int64_t pause_ms = 0;
};

// `paygatectl keys rewrap [--batch N] [--column T.C] [--after ID] [--batches N] [--pause-ms MS]`:
// moves the registered columns (`columns`, normally EncryptedColumns(config)) to the current version of
// their data keys in bounded batches, printing per column what was done and what remains. Exit 0
// when nothing remains, 3 when rows remain (locked by writers at the time, or undecryptable: see
// the counts), 1 on errors.
int RunKeysRewrap(const config::v1::Config& config, const RewrapArgs& args,
                  const std::vector<keys::EncryptedColumn>& columns);

// `paygatectl keys seal --id ID --version N --in FILE`: prints the envelope of FILE's secret under
// the configured master key, for a keyring entry's envelope_file. Exit 0, 1.
int RunKeysSeal(const config::v1::Config& config, const std::string& id, std::uint32_t version,
                const std::string& secret_file);

}  // namespace paygate::gateway
