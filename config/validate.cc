#include "config/validate.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

namespace paygate::config {
namespace {

namespace pb = google::protobuf;

constexpr std::string_view kDatabaseUrlEnv = "PAYGATE_DATABASE_URL";

// Default and inclusive range of a numeric field, copied from its comment in paygate_config.proto.
// Zero means "use the default", so the range is checked after the default is applied.
struct Bound {
  std::string_view field;
  uint64_t default_value;
  uint64_t min;
  uint64_t max;
};

constexpr std::array kServerBounds = {
    Bound{"io_threads", 2, 1, 64},
    Bound{"drain_timeout_ms", 10000, 100, 300000},
};

constexpr std::array kHttpLimitsBounds = {
    Bound{"header_size_max_bytes", 16384, 1024, 1048576},
    Bound{"body_size_max_bytes", 1048576, 0, 67108864},
    Bound{"header_read_timeout_ms", 10000, 100, 600000},
    Bound{"body_read_timeout_ms", 30000, 100, 600000},
    Bound{"idle_timeout_ms", 60000, 100, 3600000},
    Bound{"handshake_timeout_ms", 10000, 100, 600000},
    Bound{"write_timeout_ms", 30000, 100, 600000},
    Bound{"connections_max", 10000, 1, 1000000},
    Bound{"connections_per_ip_max", 1000, 1, 1000000},
    Bound{"keepalive_requests_max", 10000, 1, 1000000},
};

constexpr std::array kDatabaseBounds = {
    Bound{"pool_size_max", 8, 1, 256},
    Bound{"connect_timeout_ms", 5000, 100, 60000},
    Bound{"acquire_timeout_ms", 2000, 1, 60000},
    Bound{"statement_timeout_ms", 10000, 1, 600000},
    Bound{"retry_attempts_max", 5, 1, 20},
    Bound{"retry_backoff_base_ms", 10, 1, 10000},
    Bound{"health_check_interval_ms", 1000, 100, 60000},
};

constexpr std::array kPaymentsBounds = {
    Bound{"amount_min_minor", 1, 1, 1000000000000},
    Bound{"amount_max_minor", 100000000, 1, 1000000000000},
    Bound{"order_ttl_s", 1800, 60, 604800},
    Bound{"provider_timeout_ms", 10000, 100, 120000},
};

constexpr std::array kPayoutsBounds = {
    Bound{"amount_min_minor", 1, 1, 1000000000000},
    Bound{"amount_max_minor", 100000000, 1, 1000000000000},
    Bound{"approval_threshold_minor", 1, 1, 1000000000000},
    Bound{"second_approval_threshold_minor", 1000000000000, 1, 1000000000000},
    Bound{"attempts_max", 3, 1, 10},
};

constexpr std::array kEventsBounds = {
    Bound{"dispatch_interval_ms", 500, 10, 60000},
    Bound{"retry_window_s", 259200, 1, 2592000},
    Bound{"delivery_timeout_ms", 10000, 100, 60000},
};

constexpr std::array kJanitorBounds = {
    Bound{"interval_ms", 1000, 10, 600000},
    Bound{"batch_size", 32, 1, 1000},
    Bound{"attempts_max", 12, 1, 100},
};

constexpr std::array kRiskBounds = {
    Bound{"tail_interval_ms", 500, 10, 60000},
    Bound{"history_days", 400, 1, 3650},
};

constexpr std::array kKeysBounds = {
    Bound{"reload_interval_s", 300, 1, 86400},
};

constexpr std::array kUnionPayBounds = {
    Bound{"close_grace_s", 300, 1, 3600},
};

constexpr std::array kRateLimitBounds = {
    Bound{"requests_per_second", 0, 1, 1000000},
    Bound{"burst", 0, 1, 10000000},
};

// The level names spdlog::level::from_str maps to themselves (config/logging.cc relies on it);
// anything else would silently become "off" there.
constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

class Validator {
 public:
  explicit Validator(const ValidateOptions& options) : options_(options) {}

  FieldErrors Run(v1::Config* config) {
    // Every *_key_id field is checked against the keyring's ids, wherever it appears.
    for (const v1::KeyringEntry& entry : config->keys().entries()) ++key_versions_[entry.id()];
    ValidateListener(config, "api", &v1::Config::has_api, &v1::Config::mutable_api);
    ValidateListener(config, "admin", &v1::Config::has_admin, &v1::Config::mutable_admin);
    if (config->has_api() && config->has_admin() && config->api().port() != 0 &&
        config->api().address() == config->admin().address() &&
        config->api().port() == config->admin().port()) {
      Error("admin.port", "api and admin listen on the same address and port");
    }
    ValidateDatabase(config->mutable_database());
    ValidateLogging(config->mutable_logging());
    ValidatePrincipals(*config->mutable_principals());
    ValidateProviders(*config);
    ApplyProviderBounds(config);
    ValidatePayments(config->mutable_payments(), config->providers());
    ValidatePayouts(config->mutable_payouts(), config->providers());
    ValidateEvents(config->mutable_events(), config->principals());
    ApplyBounds(config->mutable_janitor(), kJanitorBounds, "janitor");
    ApplyBounds(config->mutable_server(), kServerBounds, "server");
    ValidateRisk(config->mutable_risk());
    ValidateKeys(config->mutable_keys());
    return std::move(errors_);
  }

 private:
  void Error(std::string path, std::string message) {
    errors_.push_back(FieldError{std::move(path), std::move(message)});
  }

  // A field referring to a secret by key id: the id must name an entry of keys.entries (so the
  // daemon never starts to find a secret missing), with at most `versions_max` versions when the
  // consumer uses every version (0: any number). Empty is an error only when `required`.
  void CheckKeyRef(const std::string& path, const std::string& id, bool required = true,
                   int versions_max = 0) {
    if (id.empty()) {
      if (required) Error(path, "required: the id of a keys.entries entry");
      return;
    }
    const auto it = key_versions_.find(id);
    if (it == key_versions_.end()) {
      Error(path, fmt::format("no keys.entries entry has id \"{}\"", id));
    } else if (versions_max > 0 && it->second > versions_max) {
      Error(path, fmt::format("key \"{}\" has {} versions; at most {} may be in use at once", id,
                              it->second, versions_max));
    }
  }

  template <size_t N>
  void ApplyBounds(pb::Message* message, const std::array<Bound, N>& bounds,
                   const std::string& path) {
    const pb::Descriptor& descriptor = *message->GetDescriptor();
    const pb::Reflection& reflection = *message->GetReflection();
    for (const Bound& bound : bounds) {
      const pb::FieldDescriptor* field = descriptor.FindFieldByName(std::string(bound.field));
      const bool is_uint32 =
          field != nullptr && field->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT32;
      const bool is_uint64 =
          field != nullptr && field->cpp_type() == pb::FieldDescriptor::CPPTYPE_UINT64;
      if (field == nullptr || field->is_repeated() || !(is_uint32 || is_uint64)) {
        // The tables above and the schema disagree: a programming error, caught by every test run.
        std::fprintf(stderr, "config: bound table names %s.%.*s, not a singular unsigned field\n",
                     descriptor.full_name().c_str(), static_cast<int>(bound.field.size()),
                     bound.field.data());
        std::abort();
      }
      uint64_t value =
          is_uint32 ? reflection.GetUInt32(*message, field) : reflection.GetUInt64(*message, field);
      if (value == 0) {
        value = bound.default_value;
        if (is_uint32) {
          reflection.SetUInt32(message, field, static_cast<uint32_t>(value));
        } else {
          reflection.SetUInt64(message, field, value);
        }
      }
      if (value < bound.min || value > bound.max) {
        Error(path + "." + field->name(),
              fmt::format("must be between {} and {}, got {}", bound.min, bound.max, value));
      }
    }
  }

  void ValidateListener(v1::Config* config, const std::string& path,
                        bool (v1::Config::*has)() const,
                        v1::Listener* (v1::Config::*mutable_listener)()) {
    if (!(config->*has)()) {
      Error(path, "required");
      return;
    }
    v1::Listener& listener = *(config->*mutable_listener)();
    if (listener.address().empty()) {
      Error(path + ".address", "required");
    } else if (!IsIpAddress(listener.address())) {
      Error(path + ".address",
            fmt::format("\"{}\" is not an IPv4 or IPv6 address", listener.address()));
    }
    if (listener.port() == 0) {
      if (!options_.allow_ephemeral_ports) Error(path + ".port", "required (1..65535)");
    } else if (listener.port() > 65535) {
      Error(path + ".port", fmt::format("must be between 1 and 65535, got {}", listener.port()));
    }
    if (!listener.has_tls()) {
      Error(path + ".tls", "required: paygate serves HTTPS only");
    } else {
      ValidateTls(listener.mutable_tls(), path + ".tls");
    }
    ApplyBounds(listener.mutable_limits(), kHttpLimitsBounds, path + ".limits");
  }

  static bool IsIpAddress(const std::string& address) {
    unsigned char buffer[16];
    return inet_pton(AF_INET, address.c_str(), buffer) == 1 ||
           inet_pton(AF_INET6, address.c_str(), buffer) == 1;
  }

  void ValidateTls(v1::Tls* tls, const std::string& path) {
    if (tls->client_cert() == v1::CLIENT_CERT_MODE_UNSPECIFIED) {
      tls->set_client_cert(v1::CLIENT_CERT_MODE_OPTIONAL);
    }
    if (tls->min_version() == v1::TLS_MIN_VERSION_UNSPECIFIED) {
      tls->set_min_version(v1::TLS_MIN_VERSION_1_2);
    }
    if (tls->cert_file().empty()) Error(path + ".cert_file", "required");
    if (tls->key_file().empty()) Error(path + ".key_file", "required");
    if (tls->client_cert() != v1::CLIENT_CERT_MODE_NONE && tls->client_ca_file().empty()) {
      Error(path + ".client_ca_file", "required unless client_cert is none");
    }
  }

  void ValidateDatabase(v1::Database* database) {
    const std::optional<std::string> env_url =
        options_.env ? options_.env(kDatabaseUrlEnv) : std::nullopt;
    const bool env_set = env_url.has_value() && !env_url->empty();
    if (database->url().empty()) {
      if (!env_set) {
        Error("database.url", fmt::format("required unless {} is set", kDatabaseUrlEnv));
      }
    } else if (std::string problem = InlinePasswordProblem(database->url()); !problem.empty()) {
      // The message must not quote the URL: it carries the password this check is about.
      Error("database.url", problem);
    }
    ApplyBounds(database, kDatabaseBounds, "database");
    CheckKeyRef("database.password_key_id", database->password_key_id(), /*required=*/false);
  }

  // Returns why a libpq connection string carries a password inline, or "" if it does not.
  static std::string InlinePasswordProblem(std::string_view url) {
    constexpr std::string_view kAdvice =
        "must not contain a password; put it in the keyring and name it by "
        "database.password_key_id";
    for (std::string_view scheme : {"postgresql://", "postgres://"}) {
      if (url.rfind(scheme, 0) != 0) continue;
      std::string_view rest = url.substr(scheme.size());
      const std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
      const size_t at = authority.rfind('@');
      if (at != std::string_view::npos &&
          authority.substr(0, at).find(':') != std::string_view::npos) {
        return fmt::format("{} (found user:password@ in the URI)", kAdvice);
      }
      const size_t query_start = rest.find('?');
      if (query_start != std::string_view::npos) {
        std::string_view query = rest.substr(query_start + 1);
        query = query.substr(0, query.find('#'));
        while (!query.empty()) {
          const size_t amp = query.find('&');
          const std::string_view param = query.substr(0, amp);
          if (IsPasswordKeyword(param.substr(0, param.find('=')))) {
            return fmt::format("{} (found a password= query parameter)", kAdvice);
          }
          query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        }
      }
      return "";
    }
    // The key=value form, parsed as libpq's conninfo_parse does: keyword, '=', a value that is
    // either single-quoted with backslash escapes or runs up to whitespace.
    size_t i = 0;
    auto skip_space = [&] {
      while (i < url.size() && std::isspace(static_cast<unsigned char>(url[i]))) ++i;
    };
    while (true) {
      skip_space();
      if (i >= url.size()) return "";
      const size_t keyword_start = i;
      while (i < url.size() && url[i] != '=' && !std::isspace(static_cast<unsigned char>(url[i]))) {
        ++i;
      }
      const std::string_view keyword = url.substr(keyword_start, i - keyword_start);
      skip_space();
      if (i >= url.size() || url[i] != '=') {
        return fmt::format("not a libpq URI or key=value string: missing \"=\" after \"{}\"",
                           keyword);
      }
      ++i;
      if (IsPasswordKeyword(keyword)) {
        return fmt::format("{} (found a password= key)", kAdvice);
      }
      skip_space();
      if (i < url.size() && url[i] == '\'') {
        ++i;
        while (i < url.size() && url[i] != '\'') i += url[i] == '\\' ? 2 : 1;
        if (i >= url.size()) return "not a libpq key=value string: unterminated quoted value";
        ++i;
      } else {
        while (i < url.size() && !std::isspace(static_cast<unsigned char>(url[i]))) {
          i += url[i] == '\\' ? 2 : 1;
        }
      }
    }
  }

  static bool IsPasswordKeyword(std::string_view keyword) {
    constexpr std::string_view kPassword = "password";
    return keyword.size() == kPassword.size() &&
           std::equal(keyword.begin(), keyword.end(), kPassword.begin(),
                      [](unsigned char a, unsigned char b) { return std::tolower(a) == b; });
  }

  void ValidateLevel(const std::string& level, const std::string& path) {
    if (std::find(kLogLevels.begin(), kLogLevels.end(), level) == kLogLevels.end()) {
      Error(path, fmt::format("\"{}\" is not a log level; accepted: trace, debug, info, warn, "
                              "error, critical, off",
                              level));
    }
  }

  void ValidateLogging(v1::Logging* logging) {
    if (logging->format() == v1::LOG_FORMAT_UNSPECIFIED) {
      logging->set_format(v1::LOG_FORMAT_HUMAN);
    }
    if (logging->level().empty()) logging->set_level("info");
    ValidateLevel(logging->level(), "logging.level");
    // Sorted so errors come out in a stable order; protobuf maps iterate in an unspecified one.
    const std::map<std::string, std::string> module_levels(logging->module_levels().begin(),
                                                           logging->module_levels().end());
    for (const auto& [module, level] : module_levels) {
      const std::string path = "logging.module_levels." + module;
      if (module.empty()) {
        Error(path, "module name must not be empty");
      } else {
        ValidateLevel(level, path);
      }
    }
  }

  static bool IsPrincipalName(const std::string& name) {
    return !name.empty() && name.size() <= 64 &&
           std::all_of(name.begin(), name.end(), [](unsigned char c) {
             return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                    c == '-';
           });
  }

  void ValidatePrincipals(pb::RepeatedPtrField<v1::Principal>& principals) {
    std::set<std::string, std::less<>> key_ids;
    std::set<std::string, std::less<>> names;
    std::set<std::string, std::less<>> common_names;
    for (int i = 0; i < principals.size(); ++i) {
      const v1::Principal& principal = principals[i];
      const std::string path = fmt::format("principals[{}]", i);
      if (principal.name().empty()) {
        Error(path + ".name", "required");
      } else if (!IsPrincipalName(principal.name())) {
        Error(path + ".name",
              fmt::format("\"{}\" must match [a-z0-9_.-]{{1,64}}", principal.name()));
      } else if (!names.insert(principal.name()).second) {
        Error(path + ".name", fmt::format("duplicate principal name \"{}\"", principal.name()));
      }
      if (principal.client_cert_common_name().empty()) {
        if (principal.api_keys().empty()) {
          Error(path + ".client_cert_common_name", "required unless api_keys are given");
        }
      } else if (!common_names.insert(principal.client_cert_common_name()).second) {
        // Two principals behind one certificate name would make authentication ambiguous.
        Error(path + ".client_cert_common_name",
              fmt::format("\"{}\" is already used by another principal",
                          principal.client_cert_common_name()));
      }
      if (principal.roles().empty()) {
        Error(path + ".roles", "at least one role is required");
      }
      std::set<int> roles;
      for (int r = 0; r < principal.roles_size(); ++r) {
        const int role = principal.roles(r);
        const std::string role_path = fmt::format("{}.roles[{}]", path, r);
        if (role == v1::ROLE_UNSPECIFIED || !v1::Role_IsValid(role)) {
          Error(role_path, "not a valid role");
        } else if (!roles.insert(role).second) {
          Error(role_path, fmt::format("duplicate role {}", v1::Role_Name(role)));
        }
      }
      if (principal.has_rate_limit()) {
        ValidateRateLimit(principals.Mutable(i)->mutable_rate_limit(), path + ".rate_limit");
      }
      for (int k = 0; k < principal.api_keys_size(); ++k) {
        v1::ApiKey* key = principals.Mutable(i)->mutable_api_keys(k);
        const std::string key_path = fmt::format("{}.api_keys[{}]", path, k);
        if (key->key_id().empty()) {
          Error(key_path + ".key_id", "required");
        } else if (!IsKeyId(key->key_id())) {
          Error(key_path + ".key_id",
                fmt::format("\"{}\" must match [A-Za-z0-9_.-]{{1,64}}", key->key_id()));
        } else if (!key_ids.insert(key->key_id()).second) {
          // A key id names one secret: two would make verification ambiguous.
          Error(key_path + ".key_id", fmt::format("duplicate key id \"{}\"", key->key_id()));
        }
        // The secret is read (and its size and permissions checked) when the daemon starts; here
        // only its reference is checked, never inline material.
        CheckKeyRef(key_path + ".secret_key_id", key->secret_key_id());
        if (key->has_rate_limit()) {
          ValidateRateLimit(key->mutable_rate_limit(), key_path + ".rate_limit");
        }
      }
    }
  }

  void ValidateProviders(const v1::Config& config) {
    std::set<std::pair<std::string, std::string>> seen;
    for (int i = 0; i < config.providers_size(); ++i) {
      const v1::ProviderAccount& account = config.providers(i);
      const std::string path = fmt::format("providers[{}]", i);
      if (account.provider() != "sandbox" && account.provider() != "wechatpay" &&
          account.provider() != "alipay" && account.provider() != "unionpay") {
        Error(path + ".provider",
              fmt::format("\"{}\" is not a supported provider (supported: sandbox, wechatpay, "
                          "alipay, unionpay)",
                          account.provider()));
      }
      if (!IsKeyId(account.merchant_account())) {
        Error(path + ".merchant_account", "required, matching [A-Za-z0-9_.-]{1,64}");
      } else if (!seen.emplace(account.provider(), account.merchant_account()).second) {
        Error(path + ".merchant_account", "duplicate provider account");
      }
      if (account.provider() == "sandbox") {
        const v1::SandboxAccount& sandbox = account.sandbox();
        if (sandbox.base_url().rfind("https://", 0) != 0) {
          Error(path + ".sandbox.base_url", "required, an https:// URL");
        }
        if (sandbox.ca_file().empty()) Error(path + ".sandbox.ca_file", "required");
        CheckKeyRef(path + ".sandbox.secret_key_id", sandbox.secret_key_id());
      }
      if (account.provider() == "wechatpay") {
        const v1::WechatPayAccount& wx = account.wechatpay();
        const std::string at = path + ".wechatpay";
        if (!wx.base_url().empty() && wx.base_url().rfind("https://", 0) != 0) {
          Error(at + ".base_url", "an https:// URL");
        }
        for (const auto& [field, value] :
             {std::pair<const char*, const std::string*>{"mchid", &wx.mchid()},
              {"appid", &wx.appid()},
              {"merchant_serial_no", &wx.merchant_serial_no()}}) {
          if (value->empty()) Error(at + "." + field, "required");
        }
        CheckKeyRef(at + ".merchant_private_key_id", wx.merchant_private_key_id());
        CheckKeyRef(at + ".apiv3_key_id", wx.apiv3_key_id());
        if (wx.public_keys().empty() && wx.platform_certificate_files().empty()) {
          Error(at + ".public_keys",
                "a WeChat Pay public key or platform certificate is required to verify replies");
        }
        for (int k = 0; k < wx.public_keys_size(); ++k) {
          if (wx.public_keys(k).id().rfind("PUB_KEY_ID_", 0) != 0) {
            Error(fmt::format("{}.public_keys[{}].id", at, k), "must start with PUB_KEY_ID_");
          }
          if (wx.public_keys(k).file().empty()) {
            Error(fmt::format("{}.public_keys[{}].file", at, k), "required");
          }
        }
      }
      if (account.provider() == "alipay") ValidateAlipay(account.alipay(), path + ".alipay");
      if (account.provider() == "unionpay") {
        ValidateUnionPay(account.unionpay(), path + ".unionpay");
      }
    }
  }

  void RequireAll(const std::string& at,
                  std::initializer_list<std::pair<const char*, const std::string*>> fields) {
    for (const auto& [field, value] : fields) {
      if (value->empty()) Error(at + "." + field, "required");
    }
  }

  void ValidateAlipay(const v1::AlipayAccount& alipay, const std::string& at) {
    if (!alipay.gateway_url().empty() && alipay.gateway_url().rfind("https://", 0) != 0) {
      Error(at + ".gateway_url", "an https:// URL");
    }
    RequireAll(at, {{"app_id", &alipay.app_id()}});
    CheckKeyRef(at + ".app_private_key_id", alipay.app_private_key_id());
    // Without Alipay's key nothing Alipay says can be trusted; with both modes half-configured it
    // would be unclear which one verifies replies.
    const bool any_cert = !alipay.app_cert_file().empty() || !alipay.alipay_cert_file().empty() ||
                          !alipay.alipay_root_cert_file().empty();
    if (any_cert) {
      if (!alipay.alipay_public_key_file().empty()) {
        Error(at + ".alipay_public_key_file",
              "public-key mode and certificate mode exclude each other: set the public key or "
              "the three certificates");
      }
      RequireAll(at, {{"app_cert_file", &alipay.app_cert_file()},
                      {"alipay_cert_file", &alipay.alipay_cert_file()},
                      {"alipay_root_cert_file", &alipay.alipay_root_cert_file()}});
    } else if (alipay.alipay_public_key_file().empty()) {
      Error(at + ".alipay_public_key_file",
            "the Alipay public key (public-key mode) or app_cert_file, alipay_cert_file and "
            "alipay_root_cert_file (certificate mode) is required to verify replies");
    }
  }

  void ValidateUnionPay(const v1::UnionPayAccount& unionpay, const std::string& at) {
    if (unionpay.base_url().rfind("https://", 0) != 0) {
      Error(at + ".base_url", "required, an https:// URL");
    }
    if (!unionpay.file_base_url().empty() && unionpay.file_base_url().rfind("https://", 0) != 0) {
      Error(at + ".file_base_url", "an https:// URL");
    }
    if (unionpay.front_url().rfind("https://", 0) != 0) {
      Error(at + ".front_url", "required, an https:// URL");
    }
    RequireAll(at, {{"mer_id", &unionpay.mer_id()},
                    {"root_cert_file", &unionpay.root_cert_file()},
                    {"middle_cert_file", &unionpay.middle_cert_file()}});
    CheckKeyRef(at + ".sign_pfx_key_id", unionpay.sign_pfx_key_id());
    CheckKeyRef(at + ".sign_pfx_password_key_id", unionpay.sign_pfx_password_key_id());
  }

  void ApplyProviderBounds(v1::Config* config) {
    for (int i = 0; i < config->providers_size(); ++i) {
      v1::ProviderAccount* account = config->mutable_providers(i);
      if (account->provider() != "unionpay") continue;
      ApplyBounds(account->mutable_unionpay(), kUnionPayBounds,
                  fmt::format("providers[{}].unionpay", i));
    }
  }

  void ValidatePayments(v1::Payments* payments,
                        const pb::RepeatedPtrField<v1::ProviderAccount>& providers) {
    ApplyBounds(payments, kPaymentsBounds, "payments");
    if (payments->amount_min_minor() > payments->amount_max_minor()) {
      Error("payments.amount_min_minor", "must not exceed amount_max_minor");
    }
    if (payments->currencies().empty()) payments->add_currencies("CNY");
    std::set<std::string, std::less<>> currencies;
    for (int i = 0; i < payments->currencies_size(); ++i) {
      const std::string& c = payments->currencies(i);
      const bool iso = c.size() == 3 && std::all_of(c.begin(), c.end(), [](char ch) {
                         return ch >= 'A' && ch <= 'Z';
                       });
      if (!iso) {
        Error(fmt::format("payments.currencies[{}]", i),
              fmt::format("\"{}\" is not an ISO 4217 code (three upper-case letters)", c));
      } else if (!currencies.insert(c).second) {
        Error(fmt::format("payments.currencies[{}]", i), fmt::format("duplicate \"{}\"", c));
      }
    }
    if (!payments->routes().empty() &&
        payments->callback_base_url().rfind("https://", 0) != 0) {
      Error("payments.callback_base_url", "required when routes are given, an https:// URL");
    }
    std::set<std::string, std::less<>> methods;
    for (int i = 0; i < payments->routes_size(); ++i) {
      const v1::PaymentRoute& route = payments->routes(i);
      const std::string path = fmt::format("payments.routes[{}]", i);
      if (!IsKeyId(route.method())) {
        Error(path + ".method", "required, matching [A-Za-z0-9_.-]{1,64}");
      } else if (!methods.insert(route.method()).second) {
        Error(path + ".method", fmt::format("method \"{}\" is routed twice", route.method()));
      }
      const bool known = std::any_of(providers.begin(), providers.end(), [&](const auto& p) {
        return p.provider() == route.provider() && p.merchant_account() == route.merchant_account();
      });
      if (!known) {
        Error(path + ".merchant_account",
              fmt::format("no providers entry for provider \"{}\" merchant_account \"{}\"",
                          route.provider(), route.merchant_account()));
      }
    }
  }

  void ValidatePayouts(v1::Payouts* payouts,
                       const pb::RepeatedPtrField<v1::ProviderAccount>& providers) {
    ApplyBounds(payouts, kPayoutsBounds, "payouts");
    if (payouts->amount_min_minor() > payouts->amount_max_minor()) {
      Error("payouts.amount_min_minor", "must not exceed amount_max_minor");
    }
    if (payouts->second_approval_threshold_minor() < payouts->approval_threshold_minor()) {
      Error("payouts.second_approval_threshold_minor",
            "must not be below approval_threshold_minor");
    }
    if (payouts->inquiry_schedule_s().empty()) {
      for (std::uint32_t s : {60u, 300u, 3600u, 86400u, 86400u, 86400u}) {
        payouts->add_inquiry_schedule_s(s);
      }
    }
    if (payouts->inquiry_schedule_s_size() > 32) {
      Error("payouts.inquiry_schedule_s", "at most 32 entries");
    }
    for (int i = 0; i < payouts->inquiry_schedule_s_size(); ++i) {
      const std::uint32_t s = payouts->inquiry_schedule_s(i);
      if (s < 1 || s > 604800) {
        Error(fmt::format("payouts.inquiry_schedule_s[{}]", i), "must be 1..604800 seconds");
      }
    }
    for (int i = 0; i < payouts->routes_size(); ++i) {
      const v1::PaymentRoute& route = payouts->routes(i);
      const std::string path = fmt::format("payouts.routes[{}]", i);
      if (!IsKeyId(route.method())) {
        Error(path + ".method", "required, matching [A-Za-z0-9_.-]{1,64}");
      }
      const bool known = std::any_of(providers.begin(), providers.end(), [&](const auto& p) {
        return p.provider() == route.provider() && p.merchant_account() == route.merchant_account();
      });
      if (!known) {
        Error(path + ".merchant_account",
              fmt::format("no providers entry for provider \"{}\" merchant_account \"{}\"",
                          route.provider(), route.merchant_account()));
      }
    }
  }

  void ValidateEvents(v1::Events* events,
                      const pb::RepeatedPtrField<v1::Principal>& principals) {
    ApplyBounds(events, kEventsBounds, "events");
    std::set<std::string, std::less<>> seen;
    for (int i = 0; i < events->webhooks_size(); ++i) {
      const v1::Webhook& hook = events->webhooks(i);
      const std::string path = fmt::format("events.webhooks[{}]", i);
      const bool known = std::any_of(principals.begin(), principals.end(),
                                     [&](const auto& p) { return p.name() == hook.principal(); });
      if (!known) {
        Error(path + ".principal", fmt::format("no principal named \"{}\"", hook.principal()));
      } else if (!seen.insert(hook.principal()).second) {
        Error(path + ".principal", "one webhook per principal");
      }
      if (hook.url().rfind("https://", 0) != 0) Error(path + ".url", "required, an https:// URL");
      // Every version signs: one, or two during a rotation.
      CheckKeyRef(path + ".secret_key_id", hook.secret_key_id(), /*required=*/true,
                  /*versions_max=*/2);
    }
  }

  // Whether the rules compile is checked by the daemon at start-up (it reads the files); here only
  // what the section itself says.
  void ValidateRisk(v1::Risk* risk) {
    ApplyBounds(risk, kRiskBounds, "risk");
    if (!risk->enabled()) return;
    if (risk->rules_file().empty()) Error("risk.rules_file", "required when risk is enabled");
    CheckKeyRef("risk.hash_key_id", risk->hash_key_id());
  }

  // The syntax of keys::IsValidKeyName (config cannot depend on keys/): names end up in blob
  // headers and SQL values.
  static bool IsKeyName(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
      const char c = name[i];
      const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      if (!alnum && (i == 0 || (c != '_' && c != '-' && c != '.' && c != '/'))) return false;
    }
    return true;
  }

  void ValidateKeys(v1::Keys* keys) {
    constexpr std::uint32_t kVersionMax = 2147483647;
    constexpr std::string_view kNameRule =
        "required: lower-case letters, digits, '_', '-', '.', '/', at most 64";
    // The defaults are applied even without a section (every number has its default after
    // validation); a section is in use once it names a master key or an entry.
    v1::MasterKeyRef* master = keys->mutable_master_key();
    const bool in_use =
        !master->id().empty() || !master->file().empty() || keys->entries_size() > 0;
    if (master->version() == 0) master->set_version(1);
    if (keys->pii_data_key().empty()) keys->set_pii_data_key("pii");
    if (!IsKeyName(keys->pii_data_key())) Error("keys.pii_data_key", std::string(kNameRule));
    ApplyBounds(keys, kKeysBounds, "keys");
    if (!in_use) return;
    if (!IsKeyName(master->id())) Error("keys.master_key.id", std::string(kNameRule));
    if (master->version() > kVersionMax) Error("keys.master_key.version", "1..2147483647");
    if (master->file().empty()) Error("keys.master_key.file", "required (64 hex digits, 0600)");
    std::set<std::pair<std::string, std::uint32_t>> seen;
    for (int i = 0; i < keys->entries_size(); ++i) {
      v1::KeyringEntry* entry = keys->mutable_entries(i);
      const std::string path = "keys.entries[" + std::to_string(i) + "]";
      if (!IsKeyName(entry->id())) Error(path + ".id", std::string(kNameRule));
      if (entry->version() == 0) entry->set_version(1);
      if (entry->version() > kVersionMax) Error(path + ".version", "1..2147483647");
      if (entry->file().empty() == entry->envelope_file().empty()) {
        Error(path, "exactly one of file and envelope_file");
      }
      if (!seen.emplace(entry->id(), entry->version()).second) {
        Error(path + ".id", "id and version already configured");
      }
    }
  }

  static bool IsKeyId(const std::string& id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](unsigned char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    });
  }

  void ValidateRateLimit(v1::RateLimit* limit, const std::string& path) {
    if (limit->requests_per_second() == 0) {
      Error(path + ".requests_per_second", "required (1..1000000)");
    } else {
      if (limit->burst() == 0) limit->set_burst(limit->requests_per_second());
      ApplyBounds(limit, kRateLimitBounds, path);
    }
  }

  const ValidateOptions& options_;
  FieldErrors errors_;
  // keys.entries: id -> number of versions.
  std::map<std::string, int, std::less<>> key_versions_;
};

}  // namespace

std::string FormatErrors(const FieldErrors& errors) {
  std::string out;
  for (const FieldError& error : errors) {
    if (!error.path.empty()) {
      out += error.path;
      out += ": ";
    }
    out += error.message;
    out += '\n';
  }
  return out;
}

std::optional<std::string> ProcessEnv(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

FieldErrors ApplyDefaultsAndValidate(v1::Config* config, const ValidateOptions& options) {
  return Validator(options).Run(config);
}

}  // namespace paygate::config
