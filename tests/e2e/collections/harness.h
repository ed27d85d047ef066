#pragma once

// Test-side pieces for the collections end-to-end test: child processes that can be killed with
// SIGKILL and started again, a blocking libpq connection for assertions on the database the daemon
// writes, HTTPS exchanges that keep the status, headers and exact body bytes (idempotent replays
// are compared byte for byte), and polling with a bound.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <libpq-fe.h>

#include "tests/integration/edge/edge_fixture.h"

namespace paygate::testing::e2e {

// A child process with stdout and stderr appended to one file (kept across restarts, so a log
// shows the life before and after a crash). The destructor kills it with SIGKILL.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::vector<std::string> env,
               std::filesystem::path output);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void Signal(int sig);
  // The exit status (128 + signal when killed), or -1 if still running after `bound`.
  int Wait(std::chrono::milliseconds bound);
  std::string Output() const;

 private:
  pid_t pid_ = -1;
  int exit_ = -1;
  std::filesystem::path output_;
};

// Writes `content` to `path` with mode 0600.
void WriteFile0600(const std::filesystem::path& path, const std::string& content);

// One blocking connection to the daemon's database; every call fails the current test (and
// throws) on an SQL error, so assertions never read a half answer.
class Sql {
 public:
  explicit Sql(const std::string& url);
  ~Sql();
  Sql(const Sql&) = delete;
  Sql& operator=(const Sql&) = delete;

  using Row = std::vector<std::string>;
  std::vector<Row> Query(const std::string& sql);
  // The single value of a one-row, one-column query.
  std::string Value(const std::string& sql);
  std::int64_t Count(const std::string& sql) { return std::stoll(Value(sql)); }
  void Exec(const std::string& sql) { Query(sql); }

 private:
  PGconn* conn_ = nullptr;
};

// One HTTP exchange as the client saw it.
struct Exchange {
  unsigned status = 0;  // 0: no answer (connection error).
  std::string error;    // Why there is no answer.
  std::string body;
  std::map<std::string, std::string> headers;  // Lower-case names.
  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// One request on a fresh TLS connection (the daemon may have been restarted since the last). A POST
// is application/json unless `headers` name another Content-Type.
Exchange Call(std::uint16_t port, const ClientOptions& options, edge::http::verb method,
              const std::string& target, const std::string& body,
              const std::vector<std::pair<std::string, std::string>>& headers);

// Polls `done` every 50 ms until it returns true or `bound` passes; returns its last answer.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds bound);

}  // namespace paygate::testing::e2e
