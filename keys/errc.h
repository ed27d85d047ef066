#pragma once

// Error codes of the keys module (STYLE.md "Errors and async": one enum and category per module).
#include <system_error>
#include <type_traits>

namespace paygate::keys {

enum class Errc {
  // The file does not exist (0 is reserved for success by std::error_code).
  not_found = 1,
  // A directory, FIFO, device or socket where a key or secret file was expected.
  not_regular_file,
  // Readable or writable by group or others (mode & 077 != 0).
  permissions_too_open,
  // The file exists but could not be opened or read.
  read_failed,
  // Larger than kSecretFileSizeMax: not a secret file.
  too_large,
  // No bytes left after stripping the trailing newline.
  empty,
};

const std::error_category& ErrorCategory() noexcept;

// Found by argument-dependent lookup when an Errc is converted to std::error_code.
std::error_code make_error_code(Errc e) noexcept;

}  // namespace paygate::keys

template <>
struct std::is_error_code_enum<paygate::keys::Errc> : std::true_type {};
