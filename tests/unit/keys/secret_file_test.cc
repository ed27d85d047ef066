#include "keys/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace paygate::keys {
namespace {

namespace fs = std::filesystem;

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "paygate-keys-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // Writes a file with exactly `mode` (fchmod, so the umask does not interfere).
  fs::path Write(const std::string& name, const std::string& content, mode_t mode) {
    const fs::path path = dir_ / name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    EXPECT_EQ(::fchmod(fd, mode), 0);
    ::close(fd);
    return path;
  }

  fs::path dir_;
};

TEST_F(SecretFileTest, AcceptsOwnerOnlyFileAndStripsOneNewline) {
  // Proves a 0600 file is read, with exactly one trailing newline removed.
  auto secret = ReadSecretFile(Write("password", "s3cr3t\n\n", 0600));
  ASSERT_TRUE(secret.has_value()) << secret.error().message();
  EXPECT_EQ(secret.value().reveal(), "s3cr3t\n");
}

TEST_F(SecretFileTest, AcceptsReadOnlyOwnerFileAndStripsCrLf) {
  // Proves 0400 is accepted and a Windows line ending does not end up inside the password.
  auto secret = ReadSecretFile(Write("password", "s3cr3t\r\n", 0400));
  ASSERT_TRUE(secret.has_value()) << secret.error().message();
  EXPECT_EQ(secret.value().reveal(), "s3cr3t");
}

TEST_F(SecretFileTest, KeepsContentWithoutTrailingNewline) {
  // Proves nothing is stripped when there is no newline, including a lone trailing '\r'.
  auto secret = ReadSecretFile(Write("password", "s3cr3t\r", 0600));
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret.value().reveal(), "s3cr3t\r");
}

TEST_F(SecretFileTest, RejectsFilesAccessibleByGroupOrOthers) {
  // Proves any group or other permission bit (0644, 0640, 0602, 0610) is refused.
  for (const mode_t mode : {0644, 0640, 0602, 0610, 0604}) {
    auto secret = ReadSecretFile(Write("password", "s3cr3t", mode));
    ASSERT_FALSE(secret.has_value()) << std::oct << mode;
    EXPECT_EQ(secret.error(), Errc::permissions_too_open) << std::oct << mode;
  }
}

TEST_F(SecretFileTest, MissingFileIsNotFound) {
  // Proves a missing file (or a missing parent directory) has its own error code.
  auto secret = ReadSecretFile(dir_ / "absent");
  ASSERT_FALSE(secret.has_value());
  EXPECT_EQ(secret.error(), Errc::not_found);
  EXPECT_EQ(ReadSecretFile(dir_ / "absent" / "file").error(), Errc::not_found);
}

TEST_F(SecretFileTest, DirectoryAndFifoAreNotRegularFiles) {
  // Proves non-regular files are refused, and a FIFO does not block the caller.
  const fs::path directory = dir_ / "directory";
  fs::create_directory(directory);
  fs::permissions(directory, fs::perms::owner_all);
  EXPECT_EQ(ReadSecretFile(directory).error(), Errc::not_regular_file);
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(ReadSecretFile(fifo).error(), Errc::not_regular_file);
}

TEST_F(SecretFileTest, EmptyAndOversizedFilesAreRefused) {
  // Proves an empty secret (also after stripping the newline) and a huge file are errors.
  EXPECT_EQ(ReadSecretFile(Write("empty", "", 0600)).error(), Errc::empty);
  EXPECT_EQ(ReadSecretFile(Write("newline", "\n", 0600)).error(), Errc::empty);
  EXPECT_EQ(ReadSecretFile(Write("big", std::string(kSecretFileSizeMax + 1, 'x'), 0600)).error(),
            Errc::too_large);
  EXPECT_TRUE(ReadSecretFile(Write("max", std::string(kSecretFileSizeMax, 'x'), 0600)).has_value());
}

TEST_F(SecretFileTest, FollowsSymlinksAndChecksTheTarget) {
  // Proves mounted-secret symlinks work and the target's mode, not the link's, is what counts.
  const fs::path link = dir_ / "link";
  fs::create_symlink(Write("target", "s3cr3t", 0600), link);
  auto secret = ReadSecretFile(link);
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret.value().reveal(), "s3cr3t");
  ASSERT_EQ(::chmod((dir_ / "target").c_str(), 0644), 0);
  EXPECT_EQ(ReadSecretFile(link).error(), Errc::permissions_too_open);
}

TEST_F(SecretFileTest, KeyFilePermissionCheck) {
  // Proves the TLS key check accepts owner-only files and refuses the same cases as secrets.
  EXPECT_TRUE(CheckKeyFilePermissions(Write("server.key", "PEM", 0600)).has_value());
  EXPECT_TRUE(CheckKeyFilePermissions(Write("ro.key", "PEM", 0400)).has_value());
  EXPECT_EQ(CheckKeyFilePermissions(Write("open.key", "PEM", 0644)).error(),
            Errc::permissions_too_open);
  EXPECT_EQ(CheckKeyFilePermissions(dir_ / "absent.key").error(), Errc::not_found);
  EXPECT_EQ(CheckKeyFilePermissions(dir_).error(), Errc::not_regular_file);
}

}  // namespace
}  // namespace paygate::keys
