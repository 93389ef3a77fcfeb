// End-to-end smoke test of nvlsched-load: the real nvlschedd on port 0 with the demo fleet,
// driven through RunLoad (the library entry point) and through the nvlsched-load binary.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/load/load_runner.h"
#include "bench/load/report.h"
#include "gtest/gtest.h"
#include "tests/testing/daemon_process.h"

namespace nvlsched::load {
namespace {

class LoadSmokeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(::testing::TempDir(), "/", info->test_suite_name(), ".", info->name(), ".",
                        getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    daemon_ = std::make_unique<testing::DaemonProcess>(NVLSCHEDD_PATH, dir_);
    ASSERT_TRUE(daemon_->Start({absl::StrCat("--db=", dir_, "/nvlsched.db"), "--seed_fleet=demo"})
                    .ok())
        << daemon_->Log();
  }
  void TearDown() override {
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Small enough for the demo fleet (quota 72 machines): 4 held batches of at most 18.
  LoadOptions SmokeOptions(Workload workload) const {
    LoadOptions options;
    options.target = daemon_->address();
    options.workload = workload;
    options.concurrency = 8;
    options.hold = 4;
    options.max_calls = 300;
    options.duration = absl::Seconds(60);
    return options;
  }

  std::string dir_;
  std::unique_ptr<testing::DaemonProcess> daemon_;
};

google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct parsed;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return parsed;
}

void ExpectRunKeys(const google::protobuf::Struct& run) {
  for (const char* key :
       {"workload", "elapsed_s", "calls", "calls_per_s", "latency_us", "status_codes", "refused",
        "refused_capacity", "refused_quota", "errors", "batches_created", "batches_deleted",
        "instances_created", "instances_deleted", "ops", "cleanup", "instances_left",
        "creates_outcome_unknown"}) {
    EXPECT_TRUE(run.fields().contains(key)) << key;
  }
  const google::protobuf::Struct& latency = run.fields().at("latency_us").struct_value();
  for (const char* key : {"p50", "p90", "p99", "max"}) {
    EXPECT_TRUE(latency.fields().contains(key)) << key;
  }
}

TEST_F(LoadSmokeTest, BatchAndNoopThroughTheLibrary) {
  absl::StatusOr<LoadResult> batch = RunLoad(SmokeOptions(Workload::kBatch));
  ASSERT_TRUE(batch.ok()) << batch.status();
  const OpStats batch_total = batch->Total();
  EXPECT_EQ(batch_total.Calls(), 300);
  EXPECT_EQ(batch_total.Errors(), 0) << FormatText({SmokeOptions(Workload::kBatch), {*batch}, {}});
  EXPECT_GT(batch->tally.batches_created, 0);
  EXPECT_GT(batch->tally.batches_deleted, 0);
  EXPECT_GT(batch->op(OpKind::kBatchCreate).codes[0], 0);
  // Everything created was deleted, during the run or by the cleanup.
  EXPECT_EQ(batch->instances_left, 0);
  EXPECT_EQ(batch->creates_outcome_unknown, 0);
  EXPECT_EQ(batch->cleanup_errors, 0);
  EXPECT_EQ(batch->tally.InstancesCreated(),
            batch->tally.InstancesDeleted() + batch->cleanup.InstancesDeleted());

  absl::StatusOr<LoadResult> noop = RunLoad(SmokeOptions(Workload::kNoop));
  ASSERT_TRUE(noop.ok()) << noop.status();
  EXPECT_EQ(noop->op(OpKind::kHealthCheck).codes[0], 300);
  EXPECT_EQ(noop->Total().Errors(), 0);
  EXPECT_GT(noop->CallsPerSecond(), 0);

  LoadReport report{SmokeOptions(Workload::kBatch), {*batch, *noop},
                    batch->CallsPerSecond() / noop->CallsPerSecond()};
  const google::protobuf::Struct json = ParseJson(FormatJson(report));
  for (const char* key : {"target", "workload", "concurrency", "hold", "runs", "ratio_to_noop"}) {
    EXPECT_TRUE(json.fields().contains(key)) << key;
  }
  const auto& runs = json.fields().at("runs").list_value();
  ASSERT_EQ(runs.values_size(), 2);
  for (const auto& run : runs.values()) ExpectRunKeys(run.struct_value());
  EXPECT_EQ(runs.values(0).struct_value().fields().at("calls").number_value(), 300);
  EXPECT_EQ(runs.values(0).struct_value().fields().at("errors").number_value(), 0);
}

// Singles need a fresh name per create: the daemon refuses a second live instance of a name.
TEST_F(LoadSmokeTest, SinglesCreateAndDeleteWithoutErrors) {
  absl::StatusOr<LoadResult> single = RunLoad(SmokeOptions(Workload::kSingle));
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_EQ(single->Total().Calls(), 300);
  EXPECT_EQ(single->Total().Errors(), 0)
      << FormatText({SmokeOptions(Workload::kSingle), {*single}, {}});
  EXPECT_GT(single->tally.singles_deleted, 0);
  EXPECT_EQ(single->instances_left, 0);
}

TEST_F(LoadSmokeTest, BinaryPrintsJsonWithCompareNoop) {
  const std::string load_dir = dir_ + "/load";
  std::filesystem::create_directories(load_dir);
  testing::DaemonProcess load(NVLSCHED_LOAD_PATH, load_dir);  // runs any binary to exit
  absl::StatusOr<int> code =
      load.RunToExit({absl::StrCat("--target=", daemon_->address()), "--workload=batch",
                      "--max_calls=300", "--concurrency=8", "--hold=4", "--compare_noop", "--json"},
                     absl::Seconds(120));
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(*code, 0) << load.Log();
  const google::protobuf::Struct json = ParseJson(load.Log());
  ASSERT_TRUE(json.fields().contains("runs"));
  const auto& runs = json.fields().at("runs").list_value();
  ASSERT_EQ(runs.values_size(), 2);
  for (const auto& run : runs.values()) {
    ExpectRunKeys(run.struct_value());
    EXPECT_EQ(run.struct_value().fields().at("calls").number_value(), 300);
    EXPECT_EQ(run.struct_value().fields().at("errors").number_value(), 0);
  }
  EXPECT_EQ(runs.values(1).struct_value().fields().at("workload").string_value(), "noop");
  EXPECT_GT(json.fields().at("ratio_to_noop").number_value(), 0);
}

}  // namespace
}  // namespace nvlsched::load
