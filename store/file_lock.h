// FileLock: an exclusive advisory lock (flock(2)) on a file, held until the FileLock is
// destroyed or the process exits (the kernel drops it even on kill -9).
//
// The store takes one on "<database>.lock" so that two daemons never open one database:
// each keeps its own in-memory inventory, so a second one would hand out machines the first
// already gave away. The lock file holds the holder's pid, for the error message only; the
// file is left in place on release (removing it would race with the next holder).
//
// Thread-safety: a FileLock is not shared; Acquire may be called from any thread.
#ifndef NVLSCHED_STORE_FILE_LOCK_H_
#define NVLSCHED_STORE_FILE_LOCK_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"

namespace nvlsched::store {

class FileLock {
 public:
  // Creates `path` if missing, locks it without waiting and writes this process's pid into it.
  // Errors: FAILED_PRECONDITION when another open file holds the lock (also one opened by this
  // process: locks belong to open files); the message names the path and the pid written
  // there. UNAVAILABLE when the file cannot be created, locked or written (errno's text).
  static absl::StatusOr<std::unique_ptr<FileLock>> Acquire(const std::string& path);

  ~FileLock();  // closes the file, which releases the lock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  FileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_;
};

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_FILE_LOCK_H_
