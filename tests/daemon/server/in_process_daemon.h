// A gtest fixture that runs the whole daemon in process (Daemon::Start on 127.0.0.1:0) over a
// SQLite file in a fresh temporary directory, seeded with the demo fleet, metrics off. Shared
// by the server tests (TLS and auth, the event stream).
//
// Thread-safety: driven from the test's thread.
#ifndef NVLSCHED_TESTS_DAEMON_SERVER_IN_PROCESS_DAEMON_H_
#define NVLSCHED_TESTS_DAEMON_SERVER_IN_PROCESS_DAEMON_H_

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon/server/daemon.h"
#include "gtest/gtest.h"

namespace nvlsched::testing {

class InProcessDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/nvlsched_daemon_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    daemon_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // The options every test starts from: loopback, port 0, the demo fleet.
  daemon::DaemonOptions Base() {
    daemon::DaemonOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = dir_ + "/nvlsched.db";
    options.metrics_listen = "";
    options.seed_fleet = "demo";
    options.shutdown_grace = absl::Seconds(1);
    // Deleted machines are reused at once here; cleaning has its own tests.
    options.require_cleaning = false;
    return options;
  }
  // Starts the daemon (a failure fails the test).
  void StartDaemon(const daemon::DaemonOptions& options) {
    absl::StatusOr<std::unique_ptr<daemon::Daemon>> started = daemon::Daemon::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    daemon_ = *std::move(started);
  }
  std::string Address() const { return absl::StrCat("127.0.0.1:", daemon_->port()); }

  std::string dir_;
  std::unique_ptr<daemon::Daemon> daemon_;
};

}  // namespace nvlsched::testing

#endif  // NVLSCHED_TESTS_DAEMON_SERVER_IN_PROCESS_DAEMON_H_
