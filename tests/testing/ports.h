#pragma once

// Free loopback TCP ports for tests that start servers (daemons, simulators, PostgreSQL) on ports
// chosen up front, because the port goes into a config file or a command line.
#include <cstdint>

namespace paygate::testing {

// A port on 127.0.0.1 that nothing listened on when asked, and that this process has not been
// given before: the kernel may hand the same ephemeral port to two bind-and-release calls in a row,
// which once gave a daemon's api and admin listeners the same port. 0 when no port can be found.
std::uint16_t FreeLoopbackPort();

}  // namespace paygate::testing
