#pragma once

// Byte codecs the provider protocols share: Base64 (every RSA signature and AES-GCM ciphertext),
// application/x-www-form-urlencoded (Alipay and UnionPay speak forms), hex. Pure functions, no I/O.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace paygate::adapters::codec {

// Standard alphabet with padding, no line breaks.
std::string Base64Encode(std::string_view bytes);
// Standard alphabet; padding required when the length is not a multiple of 4 would need it.
// Whitespace (line breaks in PEM bodies, for example) is ignored. nullopt on any other bad byte
// and on a non-canonical spelling (non-zero padding bits).
std::optional<std::string> Base64Decode(std::string_view text);

// Lower-case and upper-case hex of raw bytes.
std::string HexLower(std::string_view bytes);
std::string HexUpper(std::string_view bytes);

// Percent-encoding for form values and query strings: unreserved characters (A-Z a-z 0-9 - . _ *)
// stay, space becomes '+', every other byte becomes %XX (upper-case hex), as browsers and Java's
// URLEncoder encode form fields.
std::string FormEncode(std::string_view value);
// The inverse: '+' is a space, %XX a byte. nullopt on a truncated or non-hex escape.
std::optional<std::string> FormDecode(std::string_view value);

using FormFields = std::vector<std::pair<std::string, std::string>>;
// Splits "k=v&k2=v2" and decodes both sides, keeping the order on the wire (a provider's form is
// verified over its decoded values, never over a re-encoding). A field without '=' has an empty
// value. nullopt on a bad escape.
std::optional<FormFields> ParseForm(std::string_view body);
// Encodes fields in the given order.
std::string BuildForm(const FormFields& fields);
// The value of the first field with this name, or nullopt.
std::optional<std::string_view> FindField(const FormFields& fields, std::string_view name);

}  // namespace paygate::adapters::codec
