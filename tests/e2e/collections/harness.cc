#include "tests/e2e/collections/harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

namespace paygate::testing::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

ChildProcess::ChildProcess(std::vector<std::string> argv, std::vector<std::string> env,
                           fs::path output)
    : output_(std::move(output)) {
  pid_ = ::fork();
  if (pid_ == 0) {
    // Appended: a restarted daemon continues the same log.
    const int fd = ::open(output_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (auto& e : env) ::putenv(e.data());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    Wait(5s);
  }
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ChildProcess::Wait(std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (pid_ > 0) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = 0;
      exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(20ms);
  }
  return exit_;
}

std::string ChildProcess::Output() const {
  std::ifstream in(output_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile0600(const fs::path& path, const std::string& content) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << content;
  }
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
}

Sql::Sql(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    const std::string error = PQerrorMessage(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    throw std::runtime_error("cannot connect to " + url + ": " + error);
  }
}

Sql::~Sql() {
  if (conn_ != nullptr) PQfinish(conn_);
}

std::vector<Sql::Row> Sql::Query(const std::string& sql) {
  PGresult* result = PQexec(conn_, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    const std::string error = PQresultErrorMessage(result);
    PQclear(result);
    ADD_FAILURE() << "SQL failed: " << sql << "\n" << error;
    throw std::runtime_error("SQL failed: " + error);
  }
  std::vector<Row> rows;
  for (int r = 0; r < PQntuples(result); ++r) {
    Row row;
    for (int c = 0; c < PQnfields(result); ++c) row.emplace_back(PQgetvalue(result, r, c));
    rows.push_back(std::move(row));
  }
  PQclear(result);
  return rows;
}

std::string Sql::Value(const std::string& sql) {
  const auto rows = Query(sql);
  if (rows.size() != 1 || rows[0].size() != 1) {
    ADD_FAILURE() << "expected one value from: " << sql << " (got " << rows.size() << " rows)";
    throw std::runtime_error("not one value");
  }
  return rows[0][0];
}

Exchange Call(std::uint16_t port, const ClientOptions& options, edge::http::verb method,
              const std::string& target, const std::string& body,
              const std::vector<std::pair<std::string, std::string>>& headers) {
  Exchange out;
  TlsClient client(port, options);
  if (const auto ec = client.Connect()) {
    out.error = "connect: " + ec.message();
    return out;
  }
  edge::Request request{method, target, 11};
  for (const auto& [name, value] : headers) request.set(name, value);
  if (method == edge::http::verb::post) {
    if (request.find(edge::http::field::content_type) == request.end()) {
      request.set(edge::http::field::content_type, "application/json");
    }
    request.body() = body;
  }
  edge::Response response;
  if (const auto ec = client.Send(request, &response)) {
    out.error = "exchange: " + ec.message();
    return out;
  }
  out.status = response.result_int();
  out.body = response.body();
  for (const auto& field : response) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  return out;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
}

}  // namespace paygate::testing::e2e
