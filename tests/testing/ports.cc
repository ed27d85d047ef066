#include "tests/testing/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <unordered_set>

namespace paygate::testing {
namespace {

std::uint16_t BindAndRelease() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

std::uint16_t FreeLoopbackPort() {
  static std::mutex mutex;
  static std::unordered_set<std::uint16_t> given;
  const std::scoped_lock lock(mutex);
  for (int attempt = 0; attempt < 64; ++attempt) {
    const std::uint16_t port = BindAndRelease();
    if (port == 0) return 0;
    if (given.insert(port).second) return port;
  }
  return 0;
}

}  // namespace paygate::testing
