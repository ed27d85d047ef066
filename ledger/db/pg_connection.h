#pragma once

// PgConnection: one PostgreSQL connection driven by libpq in non-blocking mode from Asio
// coroutines.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <libpq-fe.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "keys/secret.h"
#include "ledger/db/errc.h"
#include "ledger/db/params.h"
#include "ledger/db/pg_result.h"

namespace paygate::db {

using Clock = std::chrono::steady_clock;
// Every operation takes an absolute deadline, passed down from the request (STYLE.md).
using Deadline = Clock::time_point;

// A named statement. Each connection prepares it on first use (PQsendPrepare) and afterwards only
// executes it (PQsendQueryPrepared). Declare statements as constants: `constexpr Statement
// kFoo{"foo", "SELECT ..."}`. One name must always carry the same SQL; a different SQL under a
// known name aborts.
struct Statement {
  std::string_view name;
  std::string_view sql;
};

// What the server said about the last failed statement. Messages can contain values from the
// statement (constraint details are left out on purpose), so log them only at debug level.
struct PgError {
  std::string sqlstate;    // Five characters, e.g. "40001"; empty when the failure was client-side.
  std::string message;     // Primary message, e.g. "could not serialize access due to ...".
  std::string constraint;  // Name of the violated constraint, when there is one.
};

// One statement of a pipeline (PgConnection::ExecutePipeline): prepared on first use as by
// Execute(const Statement&), or sent unprepared (as Execute(sql, ...)) when its name is empty.
struct PipelineStep {
  Statement statement;
  Params params;
};

enum class TransactionStatus { kIdle, kActive, kInTransaction, kInError, kUnknown };

struct ConnectOptions {
  // libpq URI or key=value string without a password (config: database.url).
  std::string url;
  // From database.password_file; empty when the server asks for none.
  keys::Secret password;
  std::string application_name = "paygated";
  // Server-side statement_timeout set on the connection right after connecting; 0 keeps the
  // server's.
  std::chrono::milliseconds statement_timeout{0};
};

// Thread-safety: a PgConnection is used by one coroutine at a time (the pool's lease guarantees
// it); it may move between threads between operations. No operation blocks the calling thread, with
// one caveat: libpq resolves host names with a blocking getaddrinfo() while connecting, so
// production URLs should name hosts that resolve locally (an IP address, /etc/hosts) or the pool's
// connects can stall an I/O thread.
//
// After a deadline passes mid-statement the connection is marked broken (the server may still be
// running the statement, and libpq 15 has no non-blocking cancel); the pool then discards it. The
// server-side statement_timeout bounds such orphaned work.
//
// The prepared-statement cache assumes nobody deallocates statements behind its back: do not run
// DEALLOCATE or DISCARD ALL on a pooled connection.
class PgConnection {
 public:
  // Connects and sets statement_timeout. Errors: connect_failed, timeout (deadline passed while
  // connecting), connection_lost. Never logs the URL or password.
  static boost::asio::awaitable<Result<std::unique_ptr<PgConnection>>> Connect(
      boost::asio::any_io_executor executor, const ConnectOptions& options, Deadline deadline);

  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;
  ~PgConnection();

  // One statement with parameters (PQsendQueryParams, unnamed statement). Errors: query_failed,
  // serialization_failure, deadlock, unique_violation, query_canceled (details in last_error()),
  // connection_lost, timeout, bad_value (invalid Params). `sql` must stay valid until completion.
  boost::asio::awaitable<Result<PgResult>> Execute(std::string_view sql, Params params,
                                                   Deadline deadline);
  // A prepared statement: prepared once per connection, then executed by name. Same errors.
  boost::asio::awaitable<Result<PgResult>> Execute(const Statement& statement, Params params,
                                                   Deadline deadline);
  // Several ';'-separated statements without parameters (simple query protocol), e.g. a migration.
  // Returns the result of the last statement, or the first error.
  boost::asio::awaitable<Result<PgResult>> ExecuteSimple(std::string_view sql, Deadline deadline);
  // Prepared statements sent together in one round trip (libpq pipeline mode; statements are
  // prepared on first use as by Execute). They still run one after the other, each seeing what
  // the ones before it did. Returns one result per step, or the first error: the steps after a
  // failed one do not run. Outside a transaction block the steps share one implicit transaction.
  // Same errors as Execute.
  boost::asio::awaitable<Result<std::vector<PgResult>>> ExecutePipeline(
      std::vector<PipelineStep> steps, Deadline deadline);

  // COPY ... FROM STDIN, streamed: CopyBegin sends the COPY statement and waits for the server to
  // accept data; CopyData queues one chunk (any split of the COPY text or binary stream), flushing
  // as the socket allows so memory stays bounded by libpq's buffer; CopyEnd finishes and returns
  // the command's result (rows copied in cmd_tuples), or the server's error (e.g. a unique
  // violation). CopyEnd with `abort_reason` aborts the COPY, which the server reports as an error.
  // Nothing else may run on the connection between CopyBegin and CopyEnd. Same errors as Execute.
  boost::asio::awaitable<Result<void>> CopyBegin(std::string_view sql, Deadline deadline);
  boost::asio::awaitable<Result<void>> CopyData(std::string_view chunk, Deadline deadline);
  boost::asio::awaitable<Result<PgResult>> CopyEnd(Deadline deadline,
                                                   std::string_view abort_reason = {});
  // COPY ... TO STDOUT (a table or a query, text or binary), streamed: hands `on_row` each COPY
  // data message as it arrives (the server sends one row per message; in binary format the file
  // header comes with the first row and the trailer alone) and returns the command's result
  // (rows copied in cmd_tuples) or the server's error. A view is valid only during its call.
  // Memory: libpq's read buffer, whatever the row count, where Execute holds the whole result.
  // Same errors as Execute.
  boost::asio::awaitable<Result<PgResult>> CopyOut(
      std::string_view sql, const std::function<void(std::string_view)>& on_row,
      Deadline deadline);
  // Queues `sql` (no parameters, e.g. BEGIN; must stay valid until sent) to go out with the next
  // Execute, ExecutePipeline or ExecuteSimple, in the same round trip where the protocol allows:
  // saves a round trip per transaction. Its failure is reported by that call, which then runs
  // nothing else. ClearDeferred() drops what was not sent.
  void Defer(std::string_view sql) { deferred_.push_back(sql); }
  void ClearDeferred() { deferred_.clear(); }
  bool has_deferred() const { return !deferred_.empty(); }

  // False once the connection is known to be unusable (lost, timed out, protocol error).
  bool usable() const;
  // Non-blocking check of an idle connection before reuse: false (and marked broken) when the
  // server wrote to it or closed it meanwhile, as it does when it restarts, or when statements
  // are still Defer()red (the last user left it in an unknown state).
  bool CheckIdle();
  // Marks the connection unusable, e.g. after a caller abandoned a statement half-way.
  void MarkBroken() { broken_ = true; }

  TransactionStatus transaction_status() const;
  const PgError& last_error() const { return last_error_; }
  // Statements prepared on this connection so far (a statement used many times counts once).
  std::uint64_t statements_prepared() const { return statements_prepared_; }
  // The server process serving this connection (pg_backend_pid()).
  int backend_pid() const;

 private:
  struct Io;

  PgConnection(boost::asio::any_io_executor executor, PGconn* conn);

  boost::asio::awaitable<Result<void>> Handshake(Deadline deadline);
  // Flushes the sent statement and collects its results.
  boost::asio::awaitable<Result<PgResult>> Finish(Deadline deadline);
  // Flushes the send buffer (servicing reads meanwhile, as libpq asks).
  boost::asio::awaitable<Result<void>> Flush(Deadline deadline);
  // The deferred statements, then `steps`, in pipeline mode; one result per step.
  boost::asio::awaitable<Result<std::vector<PgResult>>> RunPipeline(std::vector<PipelineStep> steps,
                                                                   Deadline deadline);
  // Waits until the socket is readable (and, if `want_write`, writable). Returns the ready set as a
  // bitmask (1 = read, 2 = write), or Errc::timeout.
  boost::asio::awaitable<Result<unsigned>> WaitReady(bool want_write, Deadline deadline);
  // Registers PQsocket() with Asio afresh: libpq may replace its socket while connecting.
  void SyncSocket();
  std::error_code Fail(Errc code, std::string_view message);
  std::error_code FailFromLibpq(Errc code);
  std::error_code FailFromResult(const PGresult* result);

  PGconn* conn_;
  std::unique_ptr<Io> io_;
  std::unordered_map<std::string, std::string> prepared_;  // name -> SQL
  std::vector<std::string_view> deferred_;                 // Defer()red, not sent yet.
  PgError last_error_;
  std::uint64_t statements_prepared_ = 0;
  bool broken_ = false;
};

}  // namespace paygate::db
