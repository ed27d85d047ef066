#include "tests/testing/pg_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <libpq-fe.h>

#include "tests/testing/ports.h"

namespace paygate::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kReadyTimeout = 60s;
constexpr auto kStopTimeout = 60s;

struct Identity {
  bool switch_user = false;  // Running as root: drop to the postgres account in children.
  uid_t uid = 0;
  gid_t gid = 0;
};

Identity ChildIdentity() {
  Identity id;
  if (geteuid() != 0) return id;
  const passwd* pw = getpwnam("postgres");
  if (pw == nullptr) {
    std::fprintf(stderr, "PgCluster: running as root but there is no 'postgres' user\n");
    return id;
  }
  id.switch_user = true;
  id.uid = pw->pw_uid;
  id.gid = pw->pw_gid;
  return id;
}

std::filesystem::path BinDir() {
  if (const char* dir = std::getenv("PAYGATE_PG_BINDIR"); dir != nullptr && *dir != '\0')
    return dir;
  return "/usr/lib/postgresql/15/bin";
}

// Everything a child needs is prepared before fork(): between fork and exec only async-signal-safe
// calls are allowed, since the test process may have other threads (Asio pools, loggers).
struct ChildSpec {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::filesystem::path cwd;
  std::filesystem::path log;
  bool new_process_group = false;
  bool die_with_parent = false;
};

pid_t Spawn(const ChildSpec& spec, const Identity& id) {
  std::vector<char*> argv;
  for (const auto& arg : spec.args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& var : spec.env) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);
  int log_fd = ::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    std::perror("PgCluster: open log");
    return -1;
  }
  const pid_t parent = ::getpid();
  const char* cwd = spec.cwd.c_str();

  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("PgCluster: fork");
    ::close(log_fd);
    return -1;
  }
  if (pid == 0) {
    if (spec.new_process_group) ::setpgid(0, 0);
    if (id.switch_user) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(id.gid) != 0 || ::setuid(id.uid) != 0)
        _exit(126);
    }
    // After setuid: changing credentials clears the parent-death signal.
    if (spec.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGINT);
      if (::getppid() != parent) _exit(125);
    }
    if (::chdir(cwd) != 0) _exit(124);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(log_fd);
  return pid;
}

// waitpid with a timeout; true when the child exited (status in *status).
bool WaitExit(pid_t pid, std::chrono::steady_clock::duration timeout, int* status) {
  auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
}

std::string ReadTail(const std::filesystem::path& path, std::size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

// Direct children of `pid`, from /proc.
std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // Format: pid (comm) state ppid ...; comm may contain spaces, so parse after the last ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == pid) children.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return children;
}

// True while `pid` exists and is not a zombie (a zombie holds no shared memory or files).
bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

std::string Conninfo(int port, std::string_view db) {
  return "host=127.0.0.1 port=" + std::to_string(port) +
         " user=postgres dbname=" + std::string(db) +
         " connect_timeout=5 application_name=paygate_fixture";
}

}  // namespace

std::unique_ptr<PgCluster> PgCluster::Start(StartOptions options) {
  std::unique_ptr<PgCluster> cluster(new PgCluster());
  cluster->options_ = std::move(options);
  cluster->bin_dir_ = BinDir();
  const Identity id = ChildIdentity();

  char pattern[] = "/tmp/paygate-pg-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) {
    std::perror("PgCluster: mkdtemp");
    return nullptr;
  }
  cluster->dir_ = pattern;
  cluster->data_dir_ = cluster->dir_ / "data";
  cluster->socket_dir_ = cluster->dir_;
  ::chmod(pattern, 0700);
  if (id.switch_user && ::chown(pattern, id.uid, id.gid) != 0) {
    std::perror("PgCluster: chown");
    return nullptr;
  }

  // --no-sync: a test cluster need not survive a power cut while it is being created. The server
  // itself runs with fsync=on, so crash tests are meaningful.
  ChildSpec initdb{
      .args = {(cluster->bin_dir_ / "initdb").string(), "-D", cluster->data_dir_.string(),
               "--auth=trust", "-U", "postgres", "--no-sync", "--locale=C", "--encoding=UTF8",
               "--no-instructions"},
      .env = {"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + cluster->dir_.string()},
      .cwd = cluster->dir_,
      .log = cluster->dir_ / "initdb.log",
  };
  pid_t pid = Spawn(initdb, id);
  int status = 0;
  if (pid < 0 || !WaitExit(pid, 120s, &status) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "PgCluster: initdb failed (status %d):\n%s\n", status,
                 ReadTail(cluster->dir_ / "initdb.log", 4000).c_str());
    return nullptr;
  }

  // The port is free when chosen but another process may take it before postgres binds it; try
  // again with a new port a few times.
  for (int attempt = 0; attempt < 5; ++attempt) {
    cluster->port_ = FreeLoopbackPort();
    if (cluster->port_ != 0 && cluster->Launch()) return cluster;
  }
  std::fprintf(stderr, "PgCluster: postgres did not start:\n%s\n",
               ReadTail(cluster->dir_ / "postgres.log", 4000).c_str());
  return nullptr;
}

PgCluster::~PgCluster() {
  if (running()) Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

std::string PgCluster::Url(std::string_view db) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + std::string(db);
}

bool PgCluster::Launch() {
  // Our previous server is known to be dead (reaped, children gone), so a leftover pid file is
  // stale; removing it avoids "lock file already exists" when its pid has been reused meanwhile.
  std::error_code ec;
  std::filesystem::remove(data_dir_ / "postmaster.pid", ec);

  ChildSpec spec{
      .args = {(bin_dir_ / "postgres").string(), "-D", data_dir_.string(), "-p",
               std::to_string(port_), "-k", socket_dir_.string(), "-c",
               "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "shared_buffers=16MB", "-c",
               "max_connections=50"},
      .env = {"PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=" + dir_.string()},
      .cwd = dir_,
      .log = dir_ / "postgres.log",
      .new_process_group = true,
      .die_with_parent = true,
  };
  // Later -c options win, so extra settings override the defaults above.
  for (const auto& [name, value] : options_.extra_settings) {
    spec.args.push_back("-c");
    spec.args.push_back(name + "=" + value);
  }
  pid_ = Spawn(spec, ChildIdentity());
  if (pid_ < 0) return false;
  if (WaitUntilReady()) return true;
  if (pid_ > 0) KillHard();
  return false;
}

bool PgCluster::WaitUntilReady() {
  const std::string conninfo = Conninfo(port_, "postgres");
  auto until = std::chrono::steady_clock::now() + kReadyTimeout;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;  // Exited: wrong port taken, bad setting, ...
      return false;
    }
    if (PQping(conninfo.c_str()) == PQPING_OK) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

bool PgCluster::Stop() {
  if (!running()) return true;
  ::kill(pid_, SIGINT);
  int status = 0;
  bool exited = WaitExit(pid_, kStopTimeout, &status);
  if (!exited) {
    std::fprintf(stderr, "PgCluster: postgres did not stop in time; killing it\n");
    KillHard();
    return false;
  }
  pid_ = -1;
  return true;
}

void PgCluster::KillHard() {
  if (!running()) return;
  // Freeze the postmaster so it forks nothing new while its children are collected, then kill them
  // all. Backends are session leaders of their own (PostgreSQL calls setsid()), so a process-group
  // kill would miss them.
  ::kill(pid_, SIGSTOP);
  std::vector<pid_t> children = ChildrenOf(pid_);
  for (pid_t child : children) ::kill(child, SIGKILL);
  ::kill(pid_, SIGKILL);
  int status = 0;
  WaitExit(pid_, kStopTimeout, &status);
  pid_ = -1;
  // Orphans are reaped by init; wait until none is alive so none still holds the old shared memory.
  auto until = std::chrono::steady_clock::now() + 10s;
  for (pid_t child : children) {
    while (Alive(child) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(5ms);
    }
  }
}

bool PgCluster::Restart() {
  if (running()) Stop();
  if (Launch()) return true;
  std::fprintf(stderr, "PgCluster: postgres did not restart:\n%s\n",
               ReadTail(dir_ / "postgres.log", 4000).c_str());
  return false;
}

std::string PgCluster::Exec(std::string_view sql, std::string_view db) {
  PGconn* conn = PQconnectdb(Conninfo(port_, db).c_str());
  std::string error;
  if (PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, std::string(sql).c_str());
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      error = PQresultErrorMessage(result);
    PQclear(result);
  }
  PQfinish(conn);
  return error;
}

std::string PgCluster::CreateDatabase(std::string_view name) {
  std::string error = Exec("CREATE DATABASE \"" + std::string(name) + "\"");
  if (!error.empty()) {
    std::fprintf(stderr, "PgCluster: CREATE DATABASE %.*s failed: %s\n",
                 static_cast<int>(name.size()), name.data(), error.c_str());
    return {};
  }
  return Url(name);
}

std::string PgCluster::SetSetting(std::string_view name, std::string_view value) {
  std::string error =
      Exec("ALTER SYSTEM SET " + std::string(name) + " = '" + std::string(value) + "'");
  if (error.empty()) error = Exec("SELECT pg_reload_conf()");
  if (!error.empty()) return error;
  // The reload is asynchronous: wait until a new session sees the value.
  const std::string query =
      "SELECT 1 WHERE current_setting('" + std::string(name) + "') = '" + std::string(value) + "'";
  auto until = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < until) {
    PGconn* conn = PQconnectdb(Conninfo(port_, "postgres").c_str());
    PGresult* result = PQexec(conn, query.c_str());
    bool applied = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1;
    PQclear(result);
    PQfinish(conn);
    if (applied) return {};
    std::this_thread::sleep_for(20ms);
  }
  return "setting " + std::string(name) + " did not take effect after reload";
}

PgCluster& SharedPgCluster() {
  static std::unique_ptr<PgCluster> cluster = [] {
    auto started = PgCluster::Start();
    if (!started) {
      std::fprintf(stderr, "SharedPgCluster: could not start PostgreSQL\n");
      std::abort();
    }
    return started;
  }();
  return *cluster;
}

}  // namespace paygate::testing
