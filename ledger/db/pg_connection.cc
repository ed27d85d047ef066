#include "ledger/db/pg_connection.h"

#include <utility>  // Before Asio (DESIGN.md §2).

#include <poll.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/logging.h"

namespace paygate::db {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

constexpr unsigned kReadable = 1;
constexpr unsigned kWritable = 2;

// Waits until `socket` is readable (and, with `want_write`, writable) or `deadline` passes,
// whichever comes first; completes with the ready set, or asio::error::timed_out. Boost 1.74 has
// neither experimental::parallel_group nor awaitable operators, so this composes the race by hand.
// Both the socket and the timer use the connection's strand as their executor, so the internal
// handlers never run concurrently; the operation completes only after every internal handler has
// run, so nothing refers to the socket or timer once the caller resumes (and may destroy them).
template <class Token>
auto AsyncWaitReady(asio::posix::stream_descriptor& socket, asio::steady_timer& timer,
                    bool want_write, Deadline deadline, Token&& token) {
  auto initiation = [](auto handler, asio::posix::stream_descriptor* sock, asio::steady_timer* tmr,
                       bool write, Deadline until) {
    using Handler = decltype(handler);
    // Keeps the caller's execution context alive while the socket and timer belong to another one.
    asio::any_io_executor work =
        asio::prefer(asio::get_associated_executor(handler, sock->get_executor()),
                     asio::execution::outstanding_work.tracked);
    struct State {
      State(Handler h, asio::any_io_executor w) : handler(std::move(h)), work(std::move(w)) {}
      Handler handler;
      asio::any_io_executor work;
      int pending = 0;
      unsigned ready = 0;
      bool timed_out = false;
      error_code error;
    };
    auto state = std::make_shared<State>(std::move(handler), std::move(work));

    auto complete = [](const std::shared_ptr<State>& s) {
      if (--s->pending > 0) return;
      error_code ec;
      if (s->ready == 0) ec = s->timed_out ? error_code(asio::error::timed_out) : s->error;
      auto executor = asio::get_associated_executor(s->handler, s->work);
      asio::dispatch(executor, [s, ec]() mutable { std::move(s->handler)(ec, s->ready); });
    };
    // The first socket wait to finish ends the race: the timer and the other socket wait are
    // cancelled (a still-pending write wait on a full send buffer would otherwise outlive the
    // deadline).
    auto on_socket = [state, sock, tmr, complete](unsigned bit) {
      return [state, sock, tmr, complete, bit](const error_code& ec) {
        if (ec != asio::error::operation_aborted) {
          if (!ec) {
            state->ready |= bit;
          } else {
            state->error = ec;
          }
          tmr->cancel();
          error_code ignored;
          sock->cancel(ignored);
        }
        complete(state);
      };
    };

    state->pending = write ? 3 : 2;
    tmr->expires_at(until);
    tmr->async_wait([state, sock, complete](const error_code& ec) {
      if (!ec && state->ready == 0) {
        state->timed_out = true;
        error_code ignored;
        sock->cancel(ignored);
      }
      complete(state);
    });
    sock->async_wait(asio::posix::descriptor_base::wait_read, on_socket(kReadable));
    if (write) sock->async_wait(asio::posix::descriptor_base::wait_write, on_socket(kWritable));
  };
  return asio::async_initiate<Token, void(error_code, unsigned)>(initiation, token, &socket, &timer,
                                                                 want_write, deadline);
}

Errc ErrcForSqlState(std::string_view state) {
  if (state == "40001") return Errc::serialization_failure;
  if (state == "40P01") return Errc::deadlock;
  if (state == "23505") return Errc::unique_violation;
  if (state == "57014") return Errc::query_canceled;
  // Class 08 (connection exception) and the shutdown states mean the session is gone.
  if (state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03") {
    return Errc::connection_lost;
  }
  return Errc::query_failed;
}

// libpq messages end with a newline and may span lines; logs want one line.
std::string OneLine(const char* text) {
  std::string line = text ? text : "";
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  return line;
}

void LogNotice(void* /*arg*/, const char* message) {
  // Notices ("relation already exists, skipping") are informational; libpq would print them to
  // stderr.
  log::Get("db")->debug("event=pg_notice message={:?}", OneLine(message));
}

// Overwrites a copy of the password once libpq has consumed it.
void Cleanse(std::string& text) {
  volatile char* p = text.data();
  for (std::size_t i = 0; i < text.size(); ++i) p[i] = 0;
  text.clear();
}

}  // namespace

struct PgConnection::Io {
  explicit Io(asio::any_io_executor executor)
      : strand(asio::make_strand(std::move(executor))), socket(strand), timer(strand) {}

  asio::strand<asio::any_io_executor> strand;
  asio::posix::stream_descriptor socket;
  asio::steady_timer timer;
};

PgConnection::PgConnection(asio::any_io_executor executor, PGconn* conn)
    : conn_(conn), io_(std::make_unique<Io>(std::move(executor))) {}

PgConnection::~PgConnection() {
  // libpq owns the socket; Asio must forget it before PQfinish closes it.
  if (io_->socket.is_open()) io_->socket.release();
  PQfinish(conn_);
}

asio::awaitable<Result<std::unique_ptr<PgConnection>>> PgConnection::Connect(
    asio::any_io_executor executor, const ConnectOptions& options, Deadline deadline) {
  // Parse first so that a malformed URL is reported without libpq's message, which may quote the
  // URL.
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &parse_error);
  if (parsed == nullptr) {
    PQfreemem(parse_error);
    log::Get("db")->error("event=connect_failed reason=invalid_database_url");
    co_return make_error_code(Errc::connect_failed);
  }
  PQconninfoFree(parsed);

  std::string password(options.password.reveal());
  // "dbname" first and expand_dbname=1: the URL is expanded in place and the keywords after it
  // override what it says, so the password and application_name we set always win.
  std::vector<const char*> keywords = {"dbname", "application_name", "client_encoding"};
  std::vector<const char*> values = {options.url.c_str(), options.application_name.c_str(), "UTF8"};
  if (!password.empty()) {
    keywords.push_back("password");
    values.push_back(password.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* raw = PQconnectStartParams(keywords.data(), values.data(), /*expand_dbname=*/1);
  Cleanse(password);
  if (raw == nullptr) co_return make_error_code(Errc::connect_failed);  // Out of memory.
  std::unique_ptr<PgConnection> conn(new PgConnection(std::move(executor), raw));
  PQsetNoticeProcessor(raw, LogNotice, nullptr);

  // libpq's protocol: behave as if the last poll asked for writing, then follow what each poll
  // asks. A connection that failed at once (host name not found, refused) starts out failed.
  PostgresPollingStatusType poll =
      PQstatus(raw) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
  while (poll != PGRES_POLLING_OK) {
    if (poll == PGRES_POLLING_FAILED) {
      auto ec = conn->FailFromLibpq(Errc::connect_failed);
      log::Get("db")->warn("event=connect_failed host={} port={} db={} message={:?}",
                           PQhost(raw) ? PQhost(raw) : "", PQport(raw) ? PQport(raw) : "",
                           PQdb(raw) ? PQdb(raw) : "", conn->last_error_.message);
      co_return ec;
    }
    conn->SyncSocket();
    auto ready = co_await conn->WaitReady(poll == PGRES_POLLING_WRITING, deadline);
    if (!ready) {
      log::Get("db")->warn("event=connect_failed reason=timeout host={} port={}",
                           PQhost(raw) ? PQhost(raw) : "", PQport(raw) ? PQport(raw) : "");
      co_return ready.error();
    }
    // A readiness we did not ask for (readable while libpq wants to write) is harmless:
    // PQconnectPoll then just asks again.
    poll = PQconnectPoll(raw);
  }
  conn->SyncSocket();
  if (PQsetnonblocking(raw, 1) != 0) co_return conn->FailFromLibpq(Errc::connect_failed);

  if (options.statement_timeout.count() > 0) {
    auto set = co_await conn->ExecuteSimple(
        fmt::format("SET statement_timeout = {}", options.statement_timeout.count()), deadline);
    if (!set) co_return set.error();
  }
  co_return conn;
}

void PgConnection::SyncSocket() {
  // Always re-register, even when the number is unchanged: while connecting, libpq may close its
  // socket and open the next one (another address of the host, a retry without SSL), and the kernel
  // hands out the same number again. epoll forgot the closed socket, so keeping Asio's registration
  // would leave the wait unanswered.
  int fd = PQsocket(conn_);
  if (io_->socket.is_open()) io_->socket.release();
  if (fd < 0) return;
  error_code ec;
  io_->socket.assign(fd, ec);
  if (ec) {
    broken_ = true;
    log::Get("db")->error("event=socket_assign_failed error={:?}", ec.message());
  }
}

asio::awaitable<Result<unsigned>> PgConnection::WaitReady(bool want_write, Deadline deadline) {
  if (!io_->socket.is_open()) co_return Fail(Errc::connection_lost, "no socket");
  error_code ec;
  unsigned ready = co_await AsyncWaitReady(io_->socket, io_->timer, want_write, deadline,
                                           asio::redirect_error(asio::use_awaitable, ec));
  if (ec == asio::error::timed_out) {
    // The statement may still run on the server; nobody can know the protocol state any more.
    broken_ = true;
    co_return Fail(Errc::timeout, "deadline exceeded");
  }
  if (ec) co_return Fail(Errc::connection_lost, ec.message());
  co_return ready;
}

std::error_code PgConnection::Fail(Errc code, std::string_view message) {
  last_error_ = PgError{.sqlstate = {}, .message = std::string(message), .constraint = {}};
  if (code == Errc::connection_lost || code == Errc::timeout || code == Errc::protocol_error ||
      code == Errc::connect_failed) {
    broken_ = true;
  }
  return make_error_code(code);
}

std::error_code PgConnection::FailFromLibpq(Errc code) {
  return Fail(code, OneLine(PQerrorMessage(conn_)));
}

std::error_code PgConnection::FailFromResult(const PGresult* result) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  const char* constraint = PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME);
  last_error_ = PgError{.sqlstate = state ? state : "",
                        .message = primary ? primary : OneLine(PQresultErrorMessage(result)),
                        .constraint = constraint ? constraint : ""};
  // Without a SQLSTATE the error was generated by libpq itself: the connection broke.
  Errc code = state ? ErrcForSqlState(state) : Errc::connection_lost;
  if (code == Errc::connection_lost || PQstatus(conn_) != CONNECTION_OK) {
    broken_ = true;
    code = Errc::connection_lost;
  }
  return make_error_code(code);
}

bool PgConnection::usable() const { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }

bool PgConnection::CheckIdle() {
  if (!usable()) return false;
  if (PQtransactionStatus(conn_) != PQTRANS_IDLE) return false;
  if (!deferred_.empty()) {
    broken_ = true;
    return false;
  }
  // poll() with a zero timeout never blocks. The server writes to an idle session only to end it (a
  // FATAL "terminating connection" before a restart, idle_session_timeout) or when the socket
  // closes; libpq would treat such a message as a notice and keep reporting CONNECTION_OK, so any
  // sign of life on an idle socket retires the connection.
  pollfd pfd{.fd = PQsocket(conn_), .events = POLLIN | POLLRDHUP, .revents = 0};
  if (pfd.fd < 0 || ::poll(&pfd, 1, 0) != 0) {
    broken_ = true;
    return false;
  }
  return true;
}

TransactionStatus PgConnection::transaction_status() const {
  switch (PQtransactionStatus(conn_)) {
    case PQTRANS_IDLE:
      return TransactionStatus::kIdle;
    case PQTRANS_ACTIVE:
      return TransactionStatus::kActive;
    case PQTRANS_INTRANS:
      return TransactionStatus::kInTransaction;
    case PQTRANS_INERROR:
      return TransactionStatus::kInError;
    case PQTRANS_UNKNOWN:
      return TransactionStatus::kUnknown;
  }
  return TransactionStatus::kUnknown;
}

int PgConnection::backend_pid() const { return PQbackendPID(conn_); }

// Execute() with deferred statements: the statement goes in a pipeline after them.
#define LEDGER_DB_CO_TRY_PIPELINE(steps)                                \
  auto pipelined = co_await RunPipeline(std::move(steps), deadline);    \
  if (!pipelined) co_return pipelined.error();                          \
  co_return std::move(pipelined.value().front())

asio::awaitable<Result<PgResult>> PgConnection::Execute(std::string_view sql, Params params,
                                                        Deadline deadline) {
  if (!usable()) co_return Fail(Errc::connection_lost, "connection is not usable");
  if (!params.valid()) co_return Fail(Errc::bad_value, "text parameter contains a NUL byte");
  if (!deferred_.empty()) {
    std::vector<PipelineStep> steps;
    steps.push_back(PipelineStep{Statement{"", sql}, std::move(params)});
    LEDGER_DB_CO_TRY_PIPELINE(steps);
  }
  std::string text(sql);
  Params::Raw raw = params.ToRaw();
  if (PQsendQueryParams(conn_, text.c_str(), params.size(), params.types(), raw.values.data(),
                        raw.lengths.data(), raw.formats.data(), /*resultFormat=*/0) == 0) {
    co_return FailFromLibpq(Errc::connection_lost);
  }
  co_return co_await Finish(deadline);
}

asio::awaitable<Result<PgResult>> PgConnection::Execute(const Statement& statement, Params params,
                                                        Deadline deadline) {
  if (!usable()) co_return Fail(Errc::connection_lost, "connection is not usable");
  if (!params.valid()) co_return Fail(Errc::bad_value, "text parameter contains a NUL byte");
  if (!deferred_.empty()) {
    std::vector<PipelineStep> steps;
    steps.push_back(PipelineStep{statement, std::move(params)});
    LEDGER_DB_CO_TRY_PIPELINE(steps);
  }
  std::string name(statement.name);
  auto it = prepared_.find(name);
  if (it == prepared_.end()) {
    std::string sql(statement.sql);
    if (PQsendPrepare(conn_, name.c_str(), sql.c_str(), params.size(), params.types()) == 0) {
      co_return FailFromLibpq(Errc::connection_lost);
    }
    auto prepared = co_await Finish(deadline);
    if (!prepared) co_return prepared.error();
    prepared_.emplace(name, std::move(sql));
    ++statements_prepared_;
  } else if (it->second != statement.sql) {
    // Two statements sharing a name is a bug in the code that declares them; executing the wrong
    // SQL against a ledger must not happen, so stop here.
    log::Get("db")->critical("event=statement_name_reused name={}", name);
    std::abort();
  }
  Params::Raw raw = params.ToRaw();
  if (PQsendQueryPrepared(conn_, name.c_str(), params.size(), raw.values.data(), raw.lengths.data(),
                          raw.formats.data(), /*resultFormat=*/0) == 0) {
    co_return FailFromLibpq(Errc::connection_lost);
  }
  co_return co_await Finish(deadline);
}

asio::awaitable<Result<PgResult>> PgConnection::ExecuteSimple(std::string_view sql,
                                                              Deadline deadline) {
  if (!usable()) co_return Fail(Errc::connection_lost, "connection is not usable");
  if (!deferred_.empty()) {
    // The simple query protocol has no pipeline: the deferred statements go first, on their own.
    auto sent = co_await RunPipeline({}, deadline);
    if (!sent) co_return sent.error();
  }
  std::string text(sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) co_return FailFromLibpq(Errc::connection_lost);
  co_return co_await Finish(deadline);
}

asio::awaitable<Result<void>> PgConnection::CopyBegin(std::string_view sql, Deadline deadline) {
  if (!usable()) co_return Fail(Errc::connection_lost, "connection is not usable");
  if (!deferred_.empty()) {
    auto sent = co_await RunPipeline({}, deadline);
    if (!sent) co_return sent.error();
  }
  last_error_ = PgError{};
  std::string text(sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) co_return FailFromLibpq(Errc::connection_lost);
  auto flushed = co_await Flush(deadline);
  if (!flushed) co_return flushed.error();
  while (PQisBusy(conn_) != 0) {
    auto ready = co_await WaitReady(/*want_write=*/false, deadline);
    if (!ready) co_return ready.error();
    if (PQconsumeInput(conn_) == 0) co_return FailFromLibpq(Errc::connection_lost);
  }
  PGresult* first = PQgetResult(conn_);
  if (first == nullptr) co_return Fail(Errc::protocol_error, "COPY returned no result");
  PgResult result(first);
  if (PQresultStatus(first) == PGRES_COPY_IN) co_return outcome::success();
  // Not a COPY FROM STDIN after all, or refused (bad table, permissions): collect the rest.
  std::error_code error = PQresultStatus(first) == PGRES_FATAL_ERROR
                              ? FailFromResult(first)
                              : Fail(Errc::protocol_error, "statement is not COPY FROM STDIN");
  auto rest = co_await Finish(deadline);
  (void)rest;
  co_return error;
}

// COPY data goes to libpq in pieces of this size (see CopyData).
constexpr std::size_t kCopyPieceBytes = 64 * 1024;

asio::awaitable<Result<void>> PgConnection::CopyData(std::string_view chunk, Deadline deadline) {
  if (!usable()) co_return Fail(Errc::connection_lost, "connection is not usable");
  while (!chunk.empty()) {
    // Small pieces, each sent before the next is queued: when a send takes only part of libpq's
    // buffer, libpq moves the rest to its front, so a buffer allowed to grow to megabytes cost a
    // copy of megabytes per partial send (most of the client's time in a million-row COPY).
    const std::size_t piece = std::min<std::size_t>(chunk.size(), kCopyPieceBytes);
    const int put = PQputCopyData(conn_, chunk.data(), static_cast<int>(piece));
    if (put < 0) co_return FailFromLibpq(Errc::connection_lost);
    if (put == 0) {
      // The buffer is full (non-blocking mode): wait until the socket drains.
      auto flushed = co_await Flush(deadline);
      if (!flushed) co_return flushed.error();
      continue;
    }
    chunk.remove_prefix(piece);
    const int sent = PQflush(conn_);
    if (sent < 0) co_return FailFromLibpq(Errc::connection_lost);
    if (sent == 1) {
      // The socket is full: wait for it rather than queue more (memory stays bounded too).
      auto flushed = co_await Flush(deadline);
      if (!flushed) co_return flushed.error();
    }
  }
  co_return outcome::success();
}

asio::awaitable<Result<PgResult>> PgConnection::CopyEnd(Deadline deadline,
                                                        std::string_view abort_reason) {
  if (!usable()) co_return Fail(Errc::connection_lost, "connection is not usable");
  std::string reason(abort_reason);
  for (;;) {
    const int ended = PQputCopyEnd(conn_, abort_reason.empty() ? nullptr : reason.c_str());
    if (ended < 0) co_return FailFromLibpq(Errc::connection_lost);
    if (ended == 1) break;
    auto flushed = co_await Flush(deadline);
    if (!flushed) co_return flushed.error();
  }
  co_return co_await Finish(deadline);
}

asio::awaitable<Result<PgResult>> PgConnection::CopyOut(
    std::string_view sql, const std::function<void(std::string_view)>& on_row,
    Deadline deadline) {
  if (!usable()) co_return Fail(Errc::connection_lost, "connection is not usable");
  if (!deferred_.empty()) {
    auto sent = co_await RunPipeline({}, deadline);
    if (!sent) co_return sent.error();
  }
  last_error_ = PgError{};
  std::string text(sql);
  if (PQsendQuery(conn_, text.c_str()) == 0) co_return FailFromLibpq(Errc::connection_lost);
  auto flushed = co_await Flush(deadline);
  if (!flushed) co_return flushed.error();
  while (PQisBusy(conn_) != 0) {
    auto ready = co_await WaitReady(/*want_write=*/false, deadline);
    if (!ready) co_return ready.error();
    if (PQconsumeInput(conn_) == 0) co_return FailFromLibpq(Errc::connection_lost);
  }
  PGresult* first = PQgetResult(conn_);
  if (first == nullptr) co_return Fail(Errc::protocol_error, "COPY returned no result");
  const PgResult started(first);
  if (PQresultStatus(first) != PGRES_COPY_OUT) {
    // Refused (bad query, permissions) or not a COPY TO STDOUT: collect the rest.
    std::error_code error = PQresultStatus(first) == PGRES_FATAL_ERROR
                                ? FailFromResult(first)
                                : Fail(Errc::protocol_error, "statement is not COPY TO STDOUT");
    auto rest = co_await Finish(deadline);
    (void)rest;
    co_return error;
  }
  for (;;) {
    char* row = nullptr;
    // Asynchronous: 0 means no complete message is buffered yet, -1 the end of the data.
    const int length = PQgetCopyData(conn_, &row, /*async=*/1);
    if (length > 0) {
      // Freed even if on_row throws (it should not: nothing here is meant to).
      std::unique_ptr<char, void (*)(void*)> owned(row, PQfreemem);
      on_row(std::string_view(row, static_cast<std::size_t>(length)));
      continue;
    }
    if (length == 0) {
      auto ready = co_await WaitReady(/*want_write=*/false, deadline);
      if (!ready) co_return ready.error();
      if (PQconsumeInput(conn_) == 0) co_return FailFromLibpq(Errc::connection_lost);
      continue;
    }
    if (length == -1) break;
    co_return FailFromLibpq(Errc::connection_lost);
  }
  co_return co_await Finish(deadline);
}

asio::awaitable<Result<void>> PgConnection::Flush(Deadline deadline) {
  // Non-blocking send: PQflush returns 1 while data remains. Reading is serviced meanwhile, as
  // libpq asks, so a server that is itself blocked writing to us cannot deadlock the exchange.
  for (;;) {
    int flushed = PQflush(conn_);
    if (flushed == 0) co_return outcome::success();
    if (flushed < 0) co_return FailFromLibpq(Errc::connection_lost);
    auto ready = co_await WaitReady(/*want_write=*/true, deadline);
    if (!ready) co_return ready.error();
    if ((ready.value() & kReadable) != 0 && PQconsumeInput(conn_) == 0) {
      co_return FailFromLibpq(Errc::connection_lost);
    }
  }
}

asio::awaitable<Result<std::vector<PgResult>>> PgConnection::ExecutePipeline(
    std::vector<PipelineStep> steps, Deadline deadline) {
  co_return co_await RunPipeline(std::move(steps), deadline);
}

asio::awaitable<Result<std::vector<PgResult>>> PgConnection::RunPipeline(
    std::vector<PipelineStep> steps, Deadline deadline) {
  std::vector<std::string_view> deferred = std::move(deferred_);
  deferred_.clear();
  if (!usable()) co_return Fail(Errc::connection_lost, "connection is not usable");
  for (const PipelineStep& step : steps) {
    if (!step.params.valid()) co_return Fail(Errc::bad_value, "text parameter contains a NUL byte");
  }
  // What each command sent was, to route its result: a deferred statement (step -1), a PREPARE
  // (recorded in prepared_ once it succeeds), or a step's execution.
  struct Command {
    int step = -1;
    bool prepare = false;
    std::string name;
    std::string sql;
  };
  std::vector<Command> commands;
  if (PQenterPipelineMode(conn_) == 0) co_return FailFromLibpq(Errc::protocol_error);
  // A send that fails leaves the pipeline in an unknown state: the connection is dropped.
  auto send_failed = [this] { return FailFromLibpq(Errc::connection_lost); };
  for (std::string_view sql : deferred) {
    std::string text(sql);
    if (PQsendQueryParams(conn_, text.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 0) {
      co_return send_failed();
    }
    commands.push_back(Command{});
  }
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Statement& statement = steps[i].statement;
    const Params& params = steps[i].params;
    Params::Raw raw = params.ToRaw();
    const int step = static_cast<int>(i);
    if (statement.name.empty()) {
      std::string text(statement.sql);
      if (PQsendQueryParams(conn_, text.c_str(), params.size(), params.types(), raw.values.data(),
                            raw.lengths.data(), raw.formats.data(), /*resultFormat=*/0) == 0) {
        co_return send_failed();
      }
      commands.push_back(Command{.step = step, .prepare = false, .name = {}, .sql = {}});
      continue;
    }
    std::string name(statement.name);
    auto it = prepared_.find(name);
    if (it != prepared_.end() && it->second != statement.sql) {
      log::Get("db")->critical("event=statement_name_reused name={}", name);
      std::abort();  // As in Execute().
    }
    const bool preparing_here = std::any_of(commands.begin(), commands.end(), [&](const Command& c) {
      return c.prepare && c.name == name;
    });
    if (it == prepared_.end() && !preparing_here) {
      std::string sql(statement.sql);
      if (PQsendPrepare(conn_, name.c_str(), sql.c_str(), params.size(), params.types()) == 0) {
        co_return send_failed();
      }
      commands.push_back(Command{.step = step, .prepare = true, .name = name, .sql = sql});
    }
    if (PQsendQueryPrepared(conn_, name.c_str(), params.size(), raw.values.data(),
                            raw.lengths.data(), raw.formats.data(), /*resultFormat=*/0) == 0) {
      co_return send_failed();
    }
    commands.push_back(Command{.step = step, .prepare = false, .name = {}, .sql = {}});
  }
  if (PQpipelineSync(conn_) == 0) co_return send_failed();
  last_error_ = PgError{};
  auto flushed = co_await Flush(deadline);
  if (!flushed) co_return flushed.error();

  // Each command's results end with a NULL; after an error the server skips the rest up to the
  // sync (PGRES_PIPELINE_ABORTED), which ends the pipeline.
  std::vector<PgResult> results(steps.size());
  std::error_code first_error;
  auto next_result = [&]() -> asio::awaitable<Result<PGresult*>> {
    while (PQisBusy(conn_) != 0) {
      auto ready = co_await WaitReady(/*want_write=*/false, deadline);
      if (!ready) co_return ready.error();
      if (PQconsumeInput(conn_) == 0) co_return FailFromLibpq(Errc::connection_lost);
    }
    co_return PQgetResult(conn_);
  };
  for (Command& command : commands) {
    for (;;) {
      auto next = co_await next_result();
      if (!next) co_return next.error();
      if (next.value() == nullptr) break;
      PgResult result(next.value());
      switch (PQresultStatus(result.raw())) {
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
        case PGRES_EMPTY_QUERY:
          if (command.prepare) {
            prepared_.emplace(command.name, std::move(command.sql));
            ++statements_prepared_;
          } else if (command.step >= 0) {
            results[static_cast<std::size_t>(command.step)] = std::move(result);
          }
          break;
        case PGRES_FATAL_ERROR:
          if (!first_error) first_error = FailFromResult(result.raw());
          break;
        case PGRES_PIPELINE_ABORTED:
        case PGRES_NONFATAL_ERROR:
          break;
        default:
          if (!first_error) {
            first_error = Fail(Errc::protocol_error, PQresStatus(PQresultStatus(result.raw())));
          }
          break;
      }
      if (broken_) co_return first_error ? first_error : Fail(Errc::connection_lost, "broken");
    }
  }
  auto sync = co_await next_result();
  if (!sync) co_return sync.error();
  PgResult sync_result(sync.value());
  if (sync.value() == nullptr || PQresultStatus(sync.value()) != PGRES_PIPELINE_SYNC ||
      PQexitPipelineMode(conn_) == 0) {
    co_return Fail(Errc::protocol_error, "pipeline did not end with its sync");
  }
  if (first_error) co_return first_error;
  co_return results;
}

asio::awaitable<Result<PgResult>> PgConnection::Finish(Deadline deadline) {
  last_error_ = PgError{};
  auto flushed = co_await Flush(deadline);
  if (!flushed) co_return flushed.error();

  // Collect every result until PQgetResult returns NULL: the last success, or the first error.
  PgResult last;
  std::error_code first_error;
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      auto ready = co_await WaitReady(/*want_write=*/false, deadline);
      if (!ready) co_return ready.error();
      if (PQconsumeInput(conn_) == 0) co_return FailFromLibpq(Errc::connection_lost);
    }
    PGresult* next = PQgetResult(conn_);
    if (next == nullptr) break;
    PgResult result(next);
    switch (PQresultStatus(next)) {
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
      case PGRES_EMPTY_QUERY:
        if (!first_error) last = std::move(result);
        break;
      case PGRES_FATAL_ERROR:
        if (!first_error) first_error = FailFromResult(next);
        break;
      case PGRES_NONFATAL_ERROR:
        break;
      default:
        // COPY, pipeline or single-row results: this layer never asks for them.
        if (!first_error) {
          first_error = Fail(Errc::protocol_error, PQresStatus(PQresultStatus(next)));
        }
        break;
    }
    if (broken_) break;
  }
  if (first_error) co_return first_error;
  co_return last;
}

}  // namespace paygate::db
