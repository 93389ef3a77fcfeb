// End-to-end smoke test of nvlsched-load: the real nvlschedd on port 0 with the demo fleet,
// driven through RunLoad (the library entry point) and through the nvlsched-load binary: the
// closed loop, the open loop (--rate) and the readers (--readers).
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
    dir_ = testing::FreshTestDir();
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

// Every order statistic of "intended send -> completion" is at least that of "send ->
// completion", call by call, so the histograms' must be too.
void ExpectLatencyFromIntendedAtLeastServiceTime(const LoadResult& run) {
  const LatencyHistogram& service = run.open_loop.service_ns;
  const LatencyHistogram latency = run.Total().latency_ns;
  ASSERT_EQ(service.Count(), latency.Count());
  for (double p : {50.0, 90.0, 99.0, 100.0}) {
    EXPECT_GE(latency.Percentile(p), service.Percentile(p)) << "p" << p;
  }
  EXPECT_GE(latency.Max(), service.Max());
  EXPECT_GE(latency.Mean(), service.Mean());
  EXPECT_GT(service.Min(), 0);
}

// 200 calls/s for 1 s: the schedule holds exactly 200 calls, and however fast the daemon is the
// open loop sends no more. Only loose bounds on how many were sent in time.
TEST_F(LoadSmokeTest, OpenLoopSendsOnScheduleAndMeasuresFromTheIntendedTime) {
  LoadOptions options = SmokeOptions(Workload::kBatch);
  options.rate = 200;
  options.duration = absl::Seconds(1);
  options.max_calls = 1000000;
  absl::StatusOr<LoadResult> run = RunLoad(options);
  ASSERT_TRUE(run.ok()) << run.status();
  const std::string text = FormatText({options, {*run}, {}});
  const OpenLoopStats& open = run->open_loop;
  EXPECT_EQ(open.target_per_s, 200);
  EXPECT_EQ(open.scheduled, 200) << text;
  EXPECT_EQ(open.issued + open.skipped, open.scheduled) << text;
  EXPECT_EQ(run->Total().Calls(), open.issued) << text;
  EXPECT_GE(open.issued, 100) << text;  // a daemon stalled for half a second would skip more
  EXPECT_DOUBLE_EQ(open.AchievedPerSecond(), 200.0 * open.issued / 200) << text;
  EXPECT_LE(open.late, open.issued);
  EXPECT_EQ(run->Total().Errors(), 0) << text;
  EXPECT_GT(run->CallsPerSecond(), 50) << text;
  EXPECT_LT(run->CallsPerSecond(), 400) << text;  // the closed loop would do far more
  ExpectLatencyFromIntendedAtLeastServiceTime(*run);
  EXPECT_EQ(run->instances_left, 0);
  EXPECT_NE(text.find("open loop: target 200.0 calls/s"), std::string::npos) << text;
}

TEST_F(LoadSmokeTest, OpenLoopWorksWithEveryWorkload) {
  for (Workload workload : {Workload::kBatch, Workload::kSingle, Workload::kMixed,
                            Workload::kNoop}) {
    LoadOptions options = SmokeOptions(workload);
    options.rate = 100;
    options.duration = absl::Milliseconds(500);
    options.max_calls = 1000000;
    absl::StatusOr<LoadResult> run = RunLoad(options);
    ASSERT_TRUE(run.ok()) << run.status();
    const std::string text = FormatText({options, {*run}, {}});
    EXPECT_EQ(run->open_loop.scheduled, 50) << text;
    EXPECT_EQ(run->Total().Calls(), run->open_loop.issued) << text;
    EXPECT_GT(run->open_loop.issued, 0) << text;
    EXPECT_EQ(run->Total().Errors(), 0) << text;
    EXPECT_EQ(run->instances_left, 0) << text;
    ExpectLatencyFromIntendedAtLeastServiceTime(*run);
  }
}

// One slot and a rate no daemon can serve (one call per 10 us): nearly every call finds the
// slot busy, so calls are late or skipped, and the accounting still adds up.
TEST_F(LoadSmokeTest, OpenLoopCountsCallsTheCapHeldBack) {
  LoadOptions options = SmokeOptions(Workload::kNoop);
  options.rate = 100000;
  options.concurrency = 1;
  options.threads = 1;
  options.duration = absl::Milliseconds(200);
  options.max_calls = 1000000;
  absl::StatusOr<LoadResult> run = RunLoad(options);
  ASSERT_TRUE(run.ok()) << run.status();
  const std::string text = FormatText({options, {*run}, {}});
  const OpenLoopStats& open = run->open_loop;
  EXPECT_EQ(open.scheduled, 20000) << text;
  EXPECT_EQ(open.issued + open.skipped, open.scheduled) << text;
  EXPECT_EQ(run->Total().Calls(), open.issued) << text;
  EXPECT_GT(open.late, 0) << text;
  EXPECT_GT(open.skipped, 0) << text;
  EXPECT_EQ(run->Total().Errors(), 0) << text;
  ExpectLatencyFromIntendedAtLeastServiceTime(*run);
  // The calls sent late waited for the slot, and that wait is in their latency: the schedule
  // ran ever further ahead of the sends, so most latencies far exceed the service time.
  EXPECT_GT(run->Total().latency_ns.Percentile(50), run->open_loop.service_ns.Percentile(50))
      << text;
}

// Readers during a closed-loop batch run: the writes are counted as without readers (exactly
// max_calls), the reads apart, every read OK.
TEST_F(LoadSmokeTest, ReadersAreMeasuredApartFromTheWorkload) {
  LoadOptions options = SmokeOptions(Workload::kBatch);
  options.readers = 2;
  options.read_page_size = 3;
  absl::StatusOr<LoadResult> run = RunLoad(options);
  ASSERT_TRUE(run.ok()) << run.status();
  const std::string text = FormatText({options, {*run}, {}});
  EXPECT_EQ(run->Total().Calls(), 300) << text;
  EXPECT_EQ(run->Total().Errors(), 0) << text;
  EXPECT_EQ(run->op(OpKind::kHealthCheck).Calls(), 0);
  const ReadStats& reads = run->reads;
  EXPECT_EQ(reads.readers, 2);
  EXPECT_GT(reads.calls.Calls(), 0) << text;
  EXPECT_EQ(reads.calls.codes[0], reads.calls.Calls()) << text;  // every read OK
  EXPECT_GT(reads.passes, 0) << text;
  EXPECT_GT(reads.CallsPerSecond(), 0) << text;
  EXPECT_NE(text.find("readers (ListInstances"), std::string::npos) << text;
}

// Readers over a fixed set of instances: each full pass reads all of them, page by page.
TEST_F(LoadSmokeTest, ReadersWalkEveryPage) {
  LoadOptions fill = SmokeOptions(Workload::kBatch);
  fill.max_calls = 10;
  fill.cleanup = false;  // leave the held batches for the readers
  absl::StatusOr<LoadResult> filled = RunLoad(fill);
  ASSERT_TRUE(filled.ok()) << filled.status();
  const int64_t instances = filled->instances_left;
  ASSERT_GT(instances, 3) << FormatText({fill, {*filled}, {}});

  LoadOptions options = SmokeOptions(Workload::kNoop);
  // Long enough for the readers to walk every page at least once (300 noop calls take ~20 ms).
  options.max_calls = 20000;
  options.readers = 2;
  options.read_page_size = 3;
  absl::StatusOr<LoadResult> run = RunLoad(options);
  ASSERT_TRUE(run.ok()) << run.status();
  const std::string text = FormatText({options, {*run}, {}});
  const ReadStats& reads = run->reads;
  ASSERT_GT(reads.passes, 0) << text;
  EXPECT_EQ(reads.calls.codes[0], reads.calls.Calls()) << text;
  // Nothing changes the instances: a pass is ceil(instances / 3) pages and reads them all; the
  // walks cut short by the end of the run read fewer.
  const int64_t pages_per_pass = (instances + 2) / 3;
  EXPECT_GE(reads.calls.Calls(), reads.passes * pages_per_pass) << text;
  EXPECT_LT(reads.calls.Calls(), (reads.passes + 2) * pages_per_pass) << text;
  EXPECT_GE(reads.instances_read, reads.passes * instances) << text;
  EXPECT_LT(reads.instances_read, (reads.passes + 2) * instances) << text;
}

TEST_F(LoadSmokeTest, BinaryPrintsOpenLoopAndReadsInJson) {
  const std::string load_dir = dir_ + "/load";
  std::filesystem::create_directories(load_dir);
  testing::DaemonProcess load(NVLSCHED_LOAD_PATH, load_dir);  // runs any binary to exit
  absl::StatusOr<int> code = load.RunToExit(
      {absl::StrCat("--target=", daemon_->address()), "--workload=batch", "--rate=100",
       "--duration=500ms", "--concurrency=8", "--hold=4", "--readers=2", "--read_page_size=7",
       "--json"},
      absl::Seconds(120));
  ASSERT_TRUE(code.ok()) << code.status();
  ASSERT_EQ(*code, 0) << load.Log();
  const google::protobuf::Struct json = ParseJson(load.Log());
  EXPECT_EQ(json.fields().at("rate").number_value(), 100);
  EXPECT_EQ(json.fields().at("readers").number_value(), 2);
  EXPECT_EQ(json.fields().at("read_page_size").number_value(), 7);
  const auto& runs = json.fields().at("runs").list_value();
  ASSERT_EQ(runs.values_size(), 1);
  const google::protobuf::Struct& run = runs.values(0).struct_value();
  ExpectRunKeys(run);
  ASSERT_TRUE(run.fields().contains("open_loop"));
  const google::protobuf::Struct& open = run.fields().at("open_loop").struct_value();
  for (const char* key : {"target_per_s", "achieved_per_s", "scheduled", "issued", "late",
                          "skipped", "service_us"}) {
    EXPECT_TRUE(open.fields().contains(key)) << key;
  }
  EXPECT_EQ(open.fields().at("target_per_s").number_value(), 100);
  EXPECT_EQ(open.fields().at("scheduled").number_value(), 50);
  EXPECT_EQ(open.fields().at("issued").number_value(), run.fields().at("calls").number_value());
  EXPECT_NEAR(open.fields().at("achieved_per_s").number_value(),
              100.0 * open.fields().at("issued").number_value() / 50, 0.05);
  ASSERT_TRUE(run.fields().contains("reads"));
  const google::protobuf::Struct& reads = run.fields().at("reads").struct_value();
  for (const char* key : {"readers", "elapsed_s", "calls", "calls_per_s", "latency_us",
                          "status_codes", "errors", "instances_read", "instances_per_s",
                          "passes"}) {
    EXPECT_TRUE(reads.fields().contains(key)) << key;
  }
  EXPECT_GT(reads.fields().at("calls").number_value(), 0);
  EXPECT_EQ(reads.fields().at("errors").number_value(), 0);
  EXPECT_EQ(reads.fields().at("status_codes").struct_value().fields().at("OK").number_value(),
            reads.fields().at("calls").number_value());
}

// Without --rate and --readers the report has neither section.
TEST_F(LoadSmokeTest, ClosedLoopJsonHasNoOpenLoopOrReads) {
  absl::StatusOr<LoadResult> run = RunLoad(SmokeOptions(Workload::kNoop));
  ASSERT_TRUE(run.ok()) << run.status();
  const google::protobuf::Struct json =
      ParseJson(FormatJson({SmokeOptions(Workload::kNoop), {*run}, {}}));
  const google::protobuf::Struct& first =
      json.fields().at("runs").list_value().values(0).struct_value();
  EXPECT_FALSE(first.fields().contains("open_loop"));
  EXPECT_FALSE(first.fields().contains("reads"));
  EXPECT_EQ(json.fields().at("rate").number_value(), 0);
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
