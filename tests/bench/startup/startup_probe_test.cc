// nvlsched-startup-probe (bench/startup/startup_probe.cc) against the real nvlschedd on a small
// nvlsched-gendb database: the one line it prints (time, peak and serving memory, the log) and
// the daemon's log naming the load; and exit 1 naming the log when the daemon does not serve.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/daemon_process.h"

namespace nvlsched {
namespace {

using ::testing::HasSubstr;

class StartupProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDir();
    std::filesystem::create_directories(dir_ + "/gendb");
    std::filesystem::create_directories(dir_ + "/probe");
    db_ = dir_ + "/fleet.db";
    // 2 domains x 18 machines, 60 instance records.
    testing::DaemonProcess gendb(NVLSCHED_GENDB_PATH, dir_ + "/gendb");
    absl::StatusOr<int> code = gendb.RunToExit(
        {absl::StrCat("--db=", db_), "--domains=2", "--instances=60", "--tenants=2"},
        absl::Seconds(120));
    ASSERT_TRUE(code.ok()) << code.status();
    ASSERT_EQ(*code, 0) << gendb.Log();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string db_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(StartupProbeTest, PrintsTimeAndMemoryOfAStartThatServes) {
  testing::DaemonProcess probe(NVLSCHED_STARTUP_PROBE_PATH, dir_ + "/probe");
  absl::StatusOr<int> code = probe.RunToExit(
      {absl::StrCat("--nvlschedd=", NVLSCHEDD_PATH), absl::StrCat("--db=", db_)},
      absl::Seconds(180));
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(*code, 0) << probe.Log();
  // One line of key=value fields.
  const std::string line(absl::StripAsciiWhitespace(probe.Log()));
  ASSERT_EQ(line.find('\n'), std::string::npos) << line;
  absl::flat_hash_map<std::string, std::string> fields;
  for (absl::string_view field : absl::StrSplit(line, ' ')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(field, absl::MaxSplits('=', 1));
    fields[kv.first] = kv.second;
  }
  ASSERT_EQ(fields.size(), 4u) << line;
  const std::string ms = fields["serving_ms"], log = fields["log"];
  int64_t hwm_mib = 0, rss_mib = 0;
  ASSERT_TRUE(absl::SimpleAtoi(fields["vmhwm_mib"], &hwm_mib)) << line;
  ASSERT_TRUE(absl::SimpleAtoi(fields["vmrss_mib"], &rss_mib)) << line;
  double serving_ms = 0;
  ASSERT_TRUE(absl::SimpleAtod(ms, &serving_ms)) << line;
  EXPECT_GT(serving_ms, 0);
  // A daemon holds some MiB serving, and its peak is at least what it holds.
  EXPECT_GT(rss_mib, 0);
  EXPECT_GE(hwm_mib, rss_mib);
  EXPECT_EQ(log, dir_ + "/nvlschedd.log");  // next to the database by default
  const std::string daemon_log = ReadFile(log);
  EXPECT_THAT(daemon_log, HasSubstr(absl::StrCat("loaded ", db_, " (36 machines, 60 instances)")));
  EXPECT_THAT(daemon_log, HasSubstr("shut down cleanly"));
}

TEST_F(StartupProbeTest, ADaemonThatExitsIsExitOneNamingItsLog) {
  testing::DaemonProcess probe(NVLSCHED_STARTUP_PROBE_PATH, dir_ + "/probe");
  absl::StatusOr<int> code =
      probe.RunToExit({absl::StrCat("--nvlschedd=", NVLSCHEDD_PATH), absl::StrCat("--db=", db_),
                       "--", "--read_threads=0"},  // refused: 1..64
                      absl::Seconds(180));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1) << probe.Log();
  EXPECT_THAT(probe.Log(), HasSubstr(absl::StrCat("the daemon exited before serving; its log: ",
                                                  dir_, "/nvlschedd.log")));
  EXPECT_THAT(probe.Log(), ::testing::Not(HasSubstr("serving_ms=")));
}

}  // namespace
}  // namespace nvlsched
