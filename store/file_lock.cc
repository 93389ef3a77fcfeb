#include "store/file_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace nvlsched::store {
namespace {

absl::Status Unavailable(const char* doing, const std::string& path, int error) {
  return absl::UnavailableError(
      absl::StrCat("cannot ", doing, " lock file ", path, ": ", std::strerror(error)));
}

// The pid the holder wrote, or "unknown" (it may not have written it yet).
std::string HolderPid(int fd) {
  char buf[32] = {};
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  std::string pid(buf, n > 0 ? static_cast<size_t>(n) : 0);
  pid = std::string(absl::StripAsciiWhitespace(pid));
  return pid.empty() ? "unknown" : pid;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileLock>> FileLock::Acquire(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Unavailable("create", path, errno);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    if (error != EWOULDBLOCK) {
      close(fd);
      return Unavailable("lock", path, error);
    }
    std::string pid = HolderPid(fd);
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("another process (pid ", pid, ") holds ", path,
                     ": its database is in use (is another nvlschedd running on it?)"));
  }
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0) {
    int error = errno;
    close(fd);
    return Unavailable("write", path, error);
  }
  ssize_t written = pwrite(fd, pid.data(), pid.size(), 0);
  if (written != static_cast<ssize_t>(pid.size())) {
    int error = written < 0 ? errno : EIO;  // a short write sets no errno
    close(fd);
    return Unavailable("write", path, error);
  }
  return std::unique_ptr<FileLock>(new FileLock(path, fd));
}

FileLock::~FileLock() { close(fd_); }

}  // namespace nvlsched::store
