#pragma once

// The durability check the daemon runs before serving (DESIGN.md §6): money must not vanish in a
// crash.
#include <utility>  // Before Asio: GCC 12 needs it for boost/asio/awaitable.hpp (DESIGN.md §2).

#include <boost/asio/awaitable.hpp>

#include "config/result.h"
#include "ledger/db/errc.h"
#include "ledger/db/pg_connection.h"
#include "ledger/db/pg_pool.h"

namespace paygate::db {

// Reads fsync, synchronous_commit and full_page_writes as the connection sees them (a session or
// role override of synchronous_commit counts) and fails with unsafe_durability when any is off; the
// message names every unsafe setting ("fsync=off, synchronous_commit=off"). synchronous_commit
// values local, remote_write, on and remote_apply are safe: each waits at least for the local WAL
// flush.
boost::asio::awaitable<Result<void, DetailedError>> CheckDurability(PgConnection& conn,
                                                                    Deadline deadline);
// The same on a connection leased from `pool`.
boost::asio::awaitable<Result<void, DetailedError>> CheckDurability(PgPool& pool,
                                                                    Deadline deadline);

}  // namespace paygate::db
