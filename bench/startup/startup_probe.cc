// nvlsched-startup-probe: starts nvlschedd once and measures exec → serving: the time from
// fork/exec until the daemon has written its --port_file AND answers grpc.health.v1.Health/Check
// with SERVING. Then reads the daemon's memory, stops it with SIGTERM and waits for it to exit.
//
//   nvlsched-startup-probe --nvlschedd=build/bin/nvlschedd --db=DB [--timeout=120s] [-- FLAGS]
//
// Prints one line "serving_ms=<ms> vmhwm_mib=<MiB> vmrss_mib=<MiB> log=<file>" on success:
// the time, the most memory the daemon had resident while it started (VmHWM, the peak of the
// load) and what it has resident serving (VmRSS). Memory is the figure that does not depend on
// how busy the machine is; on the project's VMs, memory touched after the machine was idle cost
// about 1.8 ms a MiB (README, "Start-up on this machine"). Exit 1 (with the daemon's log path)
// if the daemon died or did not serve in time. The daemon listens on 127.0.0.1:0 with metrics
// on 127.0.0.1:0; its log goes to a file next to the port file.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"

ABSL_FLAG(std::string, nvlschedd, "build/bin/nvlschedd", "the daemon binary");
ABSL_FLAG(std::string, db, "", "database the daemon opens");
ABSL_FLAG(std::string, work_dir, "", "where the port file and log go (default: the db's dir)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(120), "give up after this long");

namespace {

using Clock = std::chrono::steady_clock;

// Field `name` ("VmHWM", "VmRSS") of /proc/PID/status in MiB, rounded down; -1 if unreadable.
int64_t ProcStatusMib(pid_t pid, const std::string& name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, name.size() + 1, name + ":") != 0) continue;
    int64_t kib = -1;
    if (std::sscanf(line.c_str() + name.size() + 1, "%" SCNd64, &kib) != 1) return -1;
    return kib / 1024;
  }
  return -1;
}

int ReadPort(const std::string& path) {
  std::ifstream in(path);
  int port = 0;
  if (in >> port) return port;
  return 0;
}

// True once Health/Check answers SERVING within `deadline`.
bool Serving(int port, Clock::time_point deadline) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  while (Clock::now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    if (status.ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "nvlsched-startup-probe: time nvlschedd from exec to serving.\n"
      "Usage: nvlsched-startup-probe --nvlschedd=BIN --db=DB [-- extra daemon flags]");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  const std::string db = absl::GetFlag(FLAGS_db);
  if (db.empty()) {
    std::fprintf(stderr, "nvlsched-startup-probe: --db is required\n");
    return 2;
  }
  std::string dir = absl::GetFlag(FLAGS_work_dir);
  if (dir.empty()) {
    const size_t slash = db.rfind('/');
    dir = slash == std::string::npos ? "." : db.substr(0, slash);
  }
  const std::string port_file = dir + "/nvlschedd.port";
  const std::string log_file = dir + "/nvlschedd.log";
  std::remove(port_file.c_str());

  std::vector<std::string> args = {absl::GetFlag(FLAGS_nvlschedd), "--db=" + db,
                                   "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
                                   "--port_file=" + port_file};
  for (size_t i = 1; i < rest.size(); ++i) args.push_back(rest[i]);
  std::vector<char*> exec_args;
  for (std::string& a : args) exec_args.push_back(a.data());
  exec_args.push_back(nullptr);

  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_timeout));
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("nvlsched-startup-probe: fork");
    return 1;
  }
  if (pid == 0) {
    const int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    execv(exec_args[0], exec_args.data());
    std::perror("execv");
    _exit(127);
  }

  bool ok = false;
  bool died = false;
  int port = 0;
  // Bounded by the deadline: poll for the port file (or the daemon's death) every 1 ms.
  while (Clock::now() < deadline) {
    int wstatus = 0;
    if (waitpid(pid, &wstatus, WNOHANG) == pid) {
      died = true;
      break;
    }
    port = ReadPort(port_file);
    if (port > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (port > 0) ok = Serving(port, deadline);
  const double serving_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  const int64_t hwm_mib = ok ? ProcStatusMib(pid, "VmHWM") : -1;
  const int64_t rss_mib = ok ? ProcStatusMib(pid, "VmRSS") : -1;

  if (!died) {
    kill(pid, SIGTERM);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
  }
  if (!ok) {
    std::fprintf(stderr, "nvlsched-startup-probe: the daemon %s; its log: %s\n",
                 died ? "exited before serving" : "did not serve in time", log_file.c_str());
    return 1;
  }
  std::printf("serving_ms=%.1f vmhwm_mib=%" PRId64 " vmrss_mib=%" PRId64 " log=%s\n", serving_ms,
              hwm_mib, rss_mib, log_file.c_str());
  return 0;
}
