#pragma once

// PgCluster: a private PostgreSQL server for integration tests (STYLE.md "Tests": real PostgreSQL,
// started by the fixture), on a free loopback port, in a throw-away directory under /tmp.
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace paygate::testing {

struct StartOptions {
  // Extra server settings passed as `-c name=value`, e.g. {{"fsync", "off"}} to test the durability
  // refusal. Applied on every (re)start of the cluster.
  std::vector<std::pair<std::string, std::string>> extra_settings;
};

// Runs initdb and then `postgres` as its own child process (not pg_ctl), so tests control its life:
// Stop() shuts it down cleanly, KillHard() crashes it, Restart() brings it back on the same port
// and data directory. When the test runs as root, initdb and postgres run as the `postgres` system
// user (they refuse root). Binaries come from $PAYGATE_PG_BINDIR, else /usr/lib/postgresql/15/bin.
//
// Connections: trust authentication for user "postgres" on 127.0.0.1 only. Server output goes to
// <dir>/postgres.log, which Start() prints when the server does not come up.
// Not thread-safe: drive one cluster from one thread (the test's). The server is asked to shut down
// if the test process dies (PR_SET_PDEATHSIG), so a crashed test leaves no server behind.
class PgCluster {
 public:
  // initdb + start; nullptr (with the reason on stderr) when that fails.
  static std::unique_ptr<PgCluster> Start(StartOptions options = {});

  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;
  // Stops the server and removes the directory.
  ~PgCluster();

  int port() const { return port_; }
  // postgresql://postgres@127.0.0.1:PORT/db
  std::string Url(std::string_view db = "postgres") const;
  const std::filesystem::path& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }

  // Fast shutdown (SIGINT: abort transactions, disconnect clients, checkpoint) and wait for exit.
  bool Stop();
  // SIGKILL to the server and all its child processes, as a machine crash would leave it; returns
  // once they are all gone, so Restart() cannot meet a backend of the old server.
  void KillHard();
  // Starts the server again on the same port and data directory (stopping it first if it is
  // running); after KillHard() this goes through crash recovery. Returns false when it does not
  // come up.
  bool Restart();

  // CREATE DATABASE `name` (a plain identifier) and returns its URL; empty (reason on stderr) on
  // failure.
  std::string CreateDatabase(std::string_view name);
  // Runs one SQL statement on database "postgres" with a blocking connection (fixture side only);
  // returns an error message, empty on success.
  std::string Exec(std::string_view sql, std::string_view db = "postgres");
  // ALTER SYSTEM SET name = value, reload, and wait until new sessions see it: for sighup-level
  // settings (fsync, full_page_writes, ...). Returns an error message, empty on success. Persists
  // across restarts until set back.
  std::string SetSetting(std::string_view name, std::string_view value);

 private:
  PgCluster() = default;
  bool Launch();
  bool WaitUntilReady();

  StartOptions options_;
  std::filesystem::path dir_;
  std::filesystem::path data_dir_;
  std::filesystem::path socket_dir_;
  std::filesystem::path bin_dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// One cluster per test binary, started on first use and stopped at exit. Aborts when it cannot
// start.
PgCluster& SharedPgCluster();

}  // namespace paygate::testing
