#include "tests/testing/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace nvlsched::testing {
namespace {

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string FreshTestDir() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/", info->test_suite_name(), ".",
                                 info->name(), ".", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

DaemonProcess::DaemonProcess(std::string binary, std::string work_dir)
    : binary_(std::move(binary)), work_dir_(std::move(work_dir)) {}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
  }
}

std::string DaemonProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string DaemonProcess::Log() const { return ReadFile(log_path_); }

pid_t DaemonProcess::Spawn(const std::vector<std::string>& args) {
  ++runs_;
  log_path_ = absl::StrCat(work_dir_, "/nvlschedd.", runs_, ".log");
  std::vector<std::string> argv_storage;
  argv_storage.push_back(binary_);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDERR_FILENO);
      dup2(fd, STDOUT_FILENO);
      close(fd);
    }
    // The test runner may block signals; the daemon must start with a clean mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

absl::Status DaemonProcess::Start(const std::vector<std::string>& args, absl::Duration timeout) {
  port_file_ = absl::StrCat(work_dir_, "/port.", runs_ + 1);
  unlink(port_file_.c_str());
  // Port 0 for metrics too, so daemons of tests running in parallel never collide.
  std::vector<std::string> full = {"--listen=127.0.0.1:0", absl::StrCat("--port_file=", port_file_),
                                   "--metrics_listen=127.0.0.1:0"};
  full.insert(full.end(), args.begin(), args.end());
  pid_ = Spawn(full);
  if (pid_ < 0) return absl::InternalError("fork failed");

  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return absl::FailedPreconditionError(absl::StrCat(
          "nvlschedd exited early with code ", ExitCodeOf(st), "; its log:\n", Log()));
    }
    std::string text(absl::StripAsciiWhitespace(ReadFile(port_file_)));
    if (!text.empty() && absl::SimpleAtoi(text, &port_) && port_ > 0) {
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("nvlschedd wrote no port file within ", absl::FormatDuration(timeout),
                   "; its log:\n", Log()));
}

absl::StatusOr<int> DaemonProcess::WaitForExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return ExitCodeOf(st);
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("nvlschedd did not exit within ", absl::FormatDuration(timeout)));
}

absl::StatusOr<int> DaemonProcess::RunToExit(const std::vector<std::string>& args,
                                             absl::Duration timeout) {
  pid_ = Spawn(args);
  if (pid_ < 0) return absl::InternalError("fork failed");
  return WaitForExit(timeout);
}

absl::StatusOr<int> DaemonProcess::StopWith(int signo, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("nvlschedd is not running");
  kill(pid_, signo);
  return WaitForExit(timeout);
}

}  // namespace nvlsched::testing
