#include "keys/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <openssl/crypto.h>

namespace paygate::keys {
namespace {

// Closes a descriptor on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Errc FromOpenErrno(int error) {
  return error == ENOENT || error == ENOTDIR ? Errc::not_found : Errc::read_failed;
}

// The checks shared by secret files and key files, on an already obtained stat.
Result<void> CheckStat(const struct stat& st) {
  if (!S_ISREG(st.st_mode)) return Errc::not_regular_file;
  if ((st.st_mode & 077) != 0) return Errc::permissions_too_open;
  return outcome::success();
}

}  // namespace

Result<Secret> ReadSecretFile(const std::filesystem::path& path) {
  return ReadSecretFile(path, SecretFileContent::kText);
}

Result<Secret> ReadSecretFile(const std::filesystem::path& path, SecretFileContent content) {
  // O_NONBLOCK so that opening a FIFO placed where the file should be does not hang start-up; the
  // fstat below then rejects it.
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return FromOpenErrno(errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Errc::read_failed;
  BOOST_OUTCOME_TRY(CheckStat(st));
  if (st.st_size < 0 || static_cast<std::size_t>(st.st_size) > kSecretFileSizeMax) {
    return Errc::too_large;
  }

  // Read up to one byte past the limit, so a file that grew after fstat is caught too.
  std::string buffer(kSecretFileSizeMax + 1, '\0');
  std::size_t size = 0;
  while (size < buffer.size()) {
    const ssize_t n = ::read(fd.get(), buffer.data() + size, buffer.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      OPENSSL_cleanse(buffer.data(), buffer.size());
      return Errc::read_failed;
    }
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  Result<Secret> result = Errc::empty;
  if (size > kSecretFileSizeMax) {
    result = Errc::too_large;
  } else {
    if (content == SecretFileContent::kText && size > 0 && buffer[size - 1] == '\n') {
      --size;
      if (size > 0 && buffer[size - 1] == '\r') --size;
    }
    if (size > 0) result = Secret(std::string_view(buffer.data(), size));
  }
  OPENSSL_cleanse(buffer.data(), buffer.size());
  return result;
}

Result<void> CheckKeyFilePermissions(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return FromOpenErrno(errno);
  return CheckStat(st);
}

}  // namespace paygate::keys
