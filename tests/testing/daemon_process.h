// DaemonProcess: runs the real nvlschedd binary as a child process for end-to-end tests, the
// Kudu external-mini-cluster way: port 0, wait for the port file while watching for early
// death, then talk to it over real gRPC.
//
// Thread-safety: not thread-safe; one test thread owns it.
#ifndef NVLSCHED_TESTS_TESTING_DAEMON_PROCESS_H_
#define NVLSCHED_TESTS_TESTING_DAEMON_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace nvlsched::testing {

// A new empty directory for the running gtest test, TempDir()/<suite>.<test>.<pid> (whatever
// was there first is removed); the test removes it when done. Returns its path.
std::string FreshTestDir();

class DaemonProcess {
 public:
  // `work_dir` holds the port file and the captured stderr log.
  DaemonProcess(std::string binary, std::string work_dir);
  ~DaemonProcess();  // SIGKILLs the child if it is still running.

  // Starts `binary --listen=127.0.0.1:0 --port_file=... <args>` and waits up to `timeout` for
  // the port file. FAILED_PRECONDITION if the child exits first (with its exit code and the
  // tail of its log), DEADLINE_EXCEEDED on timeout.
  absl::Status Start(const std::vector<std::string>& args, absl::Duration timeout = absl::Seconds(60));

  // Starts the binary with exactly `args` (no --listen/--port_file added) and waits for it
  // to exit; returns its exit code (or 128+signal). DEADLINE_EXCEEDED if it does not exit.
  absl::StatusOr<int> RunToExit(const std::vector<std::string>& args, absl::Duration timeout);

  // Sends `signo` and waits up to `timeout` for exit; returns the exit code (128+signal if
  // killed by a signal).
  absl::StatusOr<int> StopWith(int signo, absl::Duration timeout = absl::Seconds(30));

  int port() const { return port_; }
  std::string address() const;
  pid_t pid() const { return pid_; }
  // Everything the child wrote to stderr so far.
  std::string Log() const;

 private:
  absl::StatusOr<int> WaitForExit(absl::Duration timeout);
  pid_t Spawn(const std::vector<std::string>& argv);

  std::string binary_;
  std::string work_dir_;
  std::string log_path_;
  std::string port_file_;
  pid_t pid_ = -1;
  int port_ = 0;
  int runs_ = 0;
};

}  // namespace nvlsched::testing

#endif  // NVLSCHED_TESTS_TESTING_DAEMON_PROCESS_H_
