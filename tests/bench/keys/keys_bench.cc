// keys_bench: FieldCipher::Encrypt and Decrypt per second on one thread, for one field size, the way
// the payouts store calls them (a fresh random nonce per field, the row identity as associated
// data, a new std::string per result). tests/bench/keys/run.sh compares the numbers with
// `openssl speed -evp aes-256-gcm` at the same size (DESIGN.md §8).
//
// Usage: keys_bench --size BYTES --seconds S. Prints one line:
//   size=<bytes> encrypt_per_s=<n> decrypt_per_s=<n>
// Exits 1 when a round trip fails (a benchmark of a broken cipher measures nothing).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "keys/field_cipher.h"

namespace {

using Clock = std::chrono::steady_clock;
using paygate::keys::DataKeyVersion;
using paygate::keys::FieldCipher;
using paygate::keys::Secret;

// Runs `op` in rounds of 1,000 until `seconds` have passed; returns calls per second.
template <class Op>
double Measure(double seconds, Op op) {
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  std::uint64_t calls = 0;
  Clock::time_point now;
  do {
    for (int i = 0; i < 1000; ++i) op(calls + static_cast<std::uint64_t>(i));
    calls += 1000;
    now = Clock::now();
  } while (now < until);
  return static_cast<double>(calls) / std::chrono::duration<double>(now - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t size = 64;
  double seconds = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--size") {
      size = std::strtoul(argv[i + 1], nullptr, 10);
    } else if (flag == "--seconds") {
      seconds = std::strtod(argv[i + 1], nullptr);
    } else {
      std::fprintf(stderr, "usage: keys_bench --size BYTES --seconds S\n");
      return 2;
    }
  }
  std::vector<DataKeyVersion> versions;
  versions.push_back({1, Secret(std::string(32, 'k'))});
  versions.push_back({2, Secret(std::string(32, 'K'))});
  auto cipher = FieldCipher::Create("beneficiary", std::move(versions));
  if (!cipher) return 1;
  const FieldCipher& c = *cipher.value();
  const std::string plaintext(size, 'p');
  const std::string aad = "payouts/po_0123456789/beneficiary_account";

  // A pool of blobs to decrypt, so decryption does not read one blob from L1 only.
  std::vector<std::string> blobs;
  for (int i = 0; i < 1024; ++i) blobs.push_back(c.Encrypt(plaintext, aad).value());
  for (const auto& blob : blobs) {
    auto back = c.Decrypt(blob, aad);
    if (!back || back.value() != plaintext) {
      std::fprintf(stderr, "keys_bench: round trip failed\n");
      return 1;
    }
  }

  std::size_t sink = 0;
  const double encrypt = Measure(seconds, [&](std::uint64_t) {
    auto blob = c.Encrypt(plaintext, aad);
    sink += blob.value().size();
  });
  bool ok = true;
  const double decrypt = Measure(seconds, [&](std::uint64_t i) {
    auto back = c.Decrypt(blobs[i % blobs.size()], aad);
    if (!back) ok = false;
    sink += back ? back.value().size() : 0;
  });
  if (!ok || sink == 0) {
    std::fprintf(stderr, "keys_bench: decryption failed during the measurement\n");
    return 1;
  }
  std::printf("size=%zu encrypt_per_s=%.0f decrypt_per_s=%.0f\n", size, encrypt, decrypt);
  return 0;
}
