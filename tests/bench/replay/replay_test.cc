// Tests for nvlsched-replay: tiny literal traces whose outcome per policy is computed by
// hand in the comments, the CSV reader's errors, the wait queue's order, queue mode
// (GangQueue) against FIFO wait mode, determinism, spot jobs and preemption.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "allocator/allocator.h"
#include "bench/replay/allocator_policy.h"
#include "bench/replay/job_shape.h"
#include "bench/replay/policy_factory.h"
#include "bench/replay/queueing_policy.h"
#include "bench/replay/report.h"
#include "bench/replay/run_plan.h"
#include "bench/replay/simulator.h"
#include "bench/replay/trace.h"
#include "bench/replay/wait_queue.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvlsched::replay {
namespace {

using ::testing::HasSubstr;

std::vector<TraceJob> Parse(const std::string& csv) {
  absl::StatusOr<std::vector<TraceJob>> trace = ParseTrace(csv, "test.csv");
  EXPECT_TRUE(trace.ok()) << trace.status();
  return trace.ok() ? *trace : std::vector<TraceJob>{};
}

ReplayResult RunPolicy(const std::string& policy_name, const std::vector<TraceJob>& trace,
                 const ReplayOptions& options, uint64_t seed = 1) {
  absl::StatusOr<std::unique_ptr<PlacementPolicy>> policy =
      MakePolicy(policy_name, options.fleet, seed, options.reservation_depth, options.preemption);
  EXPECT_TRUE(policy.ok()) << policy.status();
  absl::StatusOr<ReplayResult> result = Replay(trace, options, policy->get());
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : ReplayResult{};
}

ReplayOptions Fleet(int32_t domains, int32_t machines, int32_t gpus,
                    RefusalMode mode = RefusalMode::kDrop) {
  ReplayOptions options;
  options.fleet = FleetSpec{domains, machines, gpus};
  options.on_refusal = mode;
  return options;
}

// ------------------------------------------------------------------ trace reader

TEST(TraceTest, ParsesSkipsHeaderAndSortsStably) {
  std::vector<TraceJob> jobs =
      Parse("job_id,submit_s,duration_s,num_gpus\r\n7,50,10,2\r\n\n3,0,5,1\n9,50,1,8\n");
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].job_id, 3);
  EXPECT_EQ(jobs[1].job_id, 7);  // same submit time as 9: file order kept
  EXPECT_EQ(jobs[2].job_id, 9);
  EXPECT_EQ(jobs[1].duration_s, 10);
  EXPECT_EQ(jobs[2].num_gpus, 8);
}

TEST(TraceTest, MalformedRowsNameFileAndLine) {
  struct Case {
    std::string csv;
    std::string message;
  } cases[] = {
      {"job_id,submit_s,duration_s,num_gpus\n1,0,5,1\n2,0,5\n", "test.csv:3: found 3 fields"},
      {"job_id,submit_s,duration_s,num_gpus\n1,0,five,1\n", "test.csv:2: duration_s \"five\" is not an integer"},
      {"job_id,submit_s,duration_s,num_gpus\n1,-4,5,1\n", "test.csv:2: submit_s is negative"},
      {"job_id,submit_s,duration_s,num_gpus\n1,0,5,0\n", "test.csv:2: num_gpus 0 is out of range"},
      {"1,0,5,1\njob_id,submit_s,duration_s,num_gpus\n", "test.csv:2: job_id \"job_id\" is not an integer"},
      {"job_id,submit_s,duration_s,num_gpus\n", "test.csv: no jobs found"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<TraceJob>> trace = ParseTrace(c.csv, "test.csv");
    ASSERT_FALSE(trace.ok()) << c.csv;
    EXPECT_EQ(trace.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(trace.status().message()), HasSubstr(c.message));
    EXPECT_THAT(std::string(trace.status().message()), HasSubstr("job_id,submit_s,duration_s,num_gpus"));
  }
}

TEST(TraceTest, MissingFileIsNotFound) {
  absl::StatusOr<std::vector<TraceJob>> trace = ReadTraceFile("/nonexistent/trace.csv");
  EXPECT_EQ(trace.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(trace.status().message()), HasSubstr("/nonexistent/trace.csv"));
}

// ------------------------------------------------------------------ job mapping

TEST(JobShapeTest, MapsGpusToSinglesBatchesAndCrossDomain) {
  FleetSpec fleet{2, 4, 4};
  EXPECT_EQ(ShapeJob(3, fleet, true).kind, JobKind::kGpuSingle);
  EXPECT_EQ(ShapeJob(4, fleet, true).kind, JobKind::kWholeSingle);
  JobShape batch = ShapeJob(5, fleet, true);
  EXPECT_EQ(batch.kind, JobKind::kStrictBatch);
  EXPECT_EQ(batch.machines, 2);
  EXPECT_EQ(batch.gpus, 8);
  EXPECT_EQ(ShapeJob(16, fleet, true).kind, JobKind::kStrictBatch);
  EXPECT_EQ(ShapeJob(17, fleet, true).kind, JobKind::kCrossDomainBatch);
  EXPECT_EQ(ShapeJob(17, fleet, false).kind, JobKind::kInfeasible);
  EXPECT_EQ(ShapeJob(33, fleet, true).kind, JobKind::kInfeasible);  // 9 machines > fleet
}

// ------------------------------------------------------------------ policies side by side

// 2 domains x 4 machines x 4 GPUs. Three 100 s batches: 2, 2, then 4 machines.
//   best-fit / first-fit: 2 -> d0, 2 -> d0 (the fewest free that suffice / the first),
//                         4 -> d1. All placed.
//   carbide: 2 -> the most free (a tie: either), 2 -> the other one (4 free beats 2), so
//            both domains have 2 free and the 4-machine batch is refused although 4
//            machines are free in total. Whatever the seed.
TEST(PoliciesTest, CarbideMostFreeRefusesWhatBestFitPlaces) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,100,8\n2,1,100,8\n3,2,100,16\n");
  for (const char* name : {"best-fit", "first-fit"}) {
    ReplayResult r = RunPolicy(name, trace, Fleet(2, 4, 4));
    EXPECT_EQ(r.kind(JobKind::kStrictBatch).placed, 3) << name;
    EXPECT_EQ(r.kind(JobKind::kStrictBatch).refused, 0) << name;
    EXPECT_EQ(r.at_end.fully_free_domains, 0) << name;
    EXPECT_EQ(r.at_end.free_machines, 0) << name;
  }
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    ReplayResult r = RunPolicy("carbide", trace, Fleet(2, 4, 4), seed);
    const KindCounts& batches = r.kind(JobKind::kStrictBatch);
    EXPECT_EQ(batches.placed, 2) << seed;
    EXPECT_EQ(batches.refused, 1) << seed;
    EXPECT_EQ(batches.refused_with_room, 1) << seed;       // 4 free machines in total
    EXPECT_EQ(batches.refused_domain_had_room, 0) << seed;  // but 2 + 2
    EXPECT_EQ(r.at_end.free_machines, 4) << seed;
    EXPECT_EQ(r.at_end.stranded_machines, 0) << seed;
  }
}

// 2 domains x 2 machines x 4 GPUs; four 1-GPU singles, then a 2-machine batch.
//   best-fit: the first single goes to d0/t0 (no domain broken yet: lowest index), the
//   others to the machine with the fewest free GPUs that fit (d0/t0 again); the batch to
//   the best-fit domain: d0 has 1 free machine, d1 has 2 -> d1. Nothing free at the end.
//   first-fit: singles on the first machine that fits (d0/t0), the batch in d1 (the first
//   domain with 2 free). Same end state.
TEST(PoliciesTest, SinglesPackOntoOneMachine) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,50,1\n2,0,50,1\n3,0,50,1\n4,0,50,1\n5,1,50,8\n");
  for (const char* name : {"best-fit", "first-fit"}) {
    ReplayResult r = RunPolicy(name, trace, Fleet(2, 2, 4));
    EXPECT_EQ(r.kind(JobKind::kGpuSingle).placed, 4) << name;
    EXPECT_EQ(r.kind(JobKind::kStrictBatch).placed, 1) << name;
    EXPECT_EQ(r.at_end.used_gpus, 12) << name;
    EXPECT_EQ(r.at_end.free_machines, 1) << name;      // d0/t1
    EXPECT_EQ(r.at_end.stranded_machines, 1) << name;  // alone in d0
  }
}

// 2 domains x 4 machines x 4 GPUs. A 2-machine batch breaks d0; a 1-GPU single must go to
// d0 too (broken domains before fully free ones), and the last 1-GPU single onto the same
// partly used machine: d1 stays fully free for best-fit and first-fit.
TEST(PoliciesTest, BestFitSingleGoesToTheDomainABatchBroke) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,100,8\n2,1,100,1\n3,2,1,1\n");
  for (const char* name : {"best-fit", "first-fit"}) {
    ReplayResult r = RunPolicy(name, trace, Fleet(2, 4, 4));
    EXPECT_EQ(r.at_end.fully_free_domains, 1) << name;
    EXPECT_EQ(r.at_end.free_machines, 5) << name;
    EXPECT_DOUBLE_EQ(r.mean_fully_free_domains, 1.0) << name;
  }
}

// 1 domain x 2 machines x 4 GPUs. Two 3-GPU singles fill 3 GPUs of each machine; a 2-GPU
// single is refused although 2 GPUs are free in total (fragmentation). Same for every policy.
TEST(PoliciesTest, SingleRefusedWithEnoughFreeGpusIsCountedAsFragmentation) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,50,3\n2,0,50,3\n3,1,50,2\n");
  for (const std::string& name : KnownPolicies()) {
    ReplayResult r = RunPolicy(name, trace, Fleet(1, 2, 4));
    EXPECT_EQ(r.kind(JobKind::kGpuSingle).placed, 2) << name;
    EXPECT_EQ(r.kind(JobKind::kGpuSingle).refused, 1) << name;
    EXPECT_EQ(r.kind(JobKind::kGpuSingle).refused_with_room, 1) << name;
  }
}

// 1 domain x 2 machines x 4 GPUs: a whole machine for [0, 10), then both for [10, 20).
// The window is [0, 10] (the last submit): utilization 4 GPUs / 8 = 50%.
TEST(PoliciesTest, UtilizationIsTimeWeightedOverTheArrivalWindow) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,10,4\n2,10,10,8\n");
  for (const std::string& name : KnownPolicies()) {
    ReplayResult r = RunPolicy(name, trace, Fleet(1, 2, 4));
    EXPECT_DOUBLE_EQ(r.gpu_utilization, 0.5) << name;
    EXPECT_DOUBLE_EQ(r.mean_free_machines, 1.0) << name;
    EXPECT_EQ(r.window_s, 10) << name;
    EXPECT_EQ(r.makespan_s, 20) << name;
    EXPECT_EQ(r.kind(JobKind::kStrictBatch).placed, 1) << name;
  }
}

// 2 domains x 2 machines: a 16-GPU job needs 4 machines, more than a domain holds.
TEST(PoliciesTest, LargerThanADomainIsCrossDomainOrInfeasible) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n1,0,10,16\n");
  for (const std::string& name : KnownPolicies()) {
    ReplayOptions options = Fleet(2, 2, 4);
    ReplayResult spread = RunPolicy(name, trace, options);
    EXPECT_EQ(spread.kind(JobKind::kCrossDomainBatch).placed, 1) << name;
    EXPECT_EQ(spread.at_end.used_gpus, 16) << name;
    options.cross_domain_when_larger = false;
    ReplayResult refused = RunPolicy(name, trace, options);
    EXPECT_EQ(refused.kind(JobKind::kInfeasible).submitted, 1) << name;
    EXPECT_EQ(refused.at_end.used_gpus, 0) << name;
  }
}

// ------------------------------------------------------------------ wait mode

TEST(WaitQueueTest, OffersInArrivalOrderAndPrunesLargerSingles) {
  WaitQueue queue(4);
  queue.Push(0, JobShape{JobKind::kGpuSingle, 2, 0});
  queue.Push(1, JobShape{JobKind::kGpuSingle, 1, 0});
  queue.Push(2, JobShape{JobKind::kStrictBatch, 8, 2});
  queue.Push(3, JobShape{JobKind::kGpuSingle, 3, 0});
  queue.Push(4, JobShape{JobKind::kStrictBatch, 4 * 1, 1});
  std::vector<uint32_t> offered;
  // Room for 1-GPU singles only; no batch fits.
  absl::Status status = queue.OfferAll([&](uint32_t job, const JobShape& shape) -> absl::StatusOr<bool> {
    offered.push_back(job);
    return shape.kind == JobKind::kGpuSingle && shape.gpus == 1;
  });
  ASSERT_TRUE(status.ok()) << status;
  // 0 refused (blocks singles >= 2 GPUs, so 3 is never offered), 1 placed, 2 refused
  // (blocks later batches, so 4 is never offered).
  EXPECT_THAT(offered, ::testing::ElementsAre(0, 1, 2));
  EXPECT_EQ(queue.size(), 4u);
}

// 1 domain x 4 machines x 4 GPUs, first-fit and best-fit (the same here), wait mode.
//   t=0   job A: 3 machines until 100.                      free: 1 machine
//   t=1   job B: 4 machines -> refused, waits.
//   t=2   job C: 2 machines -> queued behind B (FIFO), not offered.
//   t=3   job D: a whole-machine single -> placed at once (singles backfill) until 203.
//   t=100 A ends: 3 free. B (4) still refused; C (2) would fit but stays behind B.
//   t=203 D ends: 4 free -> B starts (waited 202) until 213.
//   t=213 B ends -> C starts (waited 211).
TEST(WaitModeTest, BatchesAreFifoHeadOfLineAndSinglesBackfill) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,100,12\n2,1,10,16\n3,2,10,8\n4,3,200,4\n");
  for (const char* name : {"best-fit", "first-fit", "carbide", "random"}) {
    ReplayResult r = RunPolicy(name, trace, Fleet(1, 4, 4, RefusalMode::kWait));
    const KindCounts& batches = r.kind(JobKind::kStrictBatch);
    EXPECT_EQ(batches.placed, 3) << name;
    EXPECT_EQ(batches.refused, 1) << name;
    EXPECT_EQ(batches.queued_behind_batch, 1) << name;
    EXPECT_EQ(batches.placed_after_wait, 2) << name;
    EXPECT_EQ(r.kind(JobKind::kWholeSingle).placed_after_wait, 0) << name;
    EXPECT_EQ(r.wait_batches.max_s, 211) << name;
    EXPECT_DOUBLE_EQ(r.wait_batches.mean_s, (0 + 202 + 211) / 3.0) << name;
    EXPECT_EQ(r.wait_singles.jobs, 1) << name;
    EXPECT_EQ(r.wait_singles.max_s, 0) << name;
    EXPECT_DOUBLE_EQ(r.wait_all.mean_s, (0 + 202 + 211 + 0) / 4.0) << name;
    EXPECT_EQ(r.makespan_s, 223) << name;
    EXPECT_EQ(r.max_queue_length, 2) << name;
  }
}

// ------------------------------------------------------------------ determinism

std::string RandomTraceCsv(int jobs) {
  std::string csv = "job_id,submit_s,duration_s,num_gpus\n";
  uint64_t x = 12345;
  auto next = [&x] { return (x = x * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  static constexpr int kGpus[] = {1, 1, 1, 2, 3, 4, 8, 12, 16, 32, 80};
  for (int i = 0; i < jobs; ++i) {
    absl::StrAppend(&csv, i, ",", i * 30 + next() % 30, ",", 60 + next() % 3000, ",",
                    kGpus[next() % 11], "\n");
  }
  return csv;
}

std::string WithoutWallTime(const ReplayResult& r) {
  ReplayResult copy = r;
  copy.wall_s = 0;
  std::string out = FormatJson(RunInfo{}, {copy});
  for (const SeriesPoint& p : r.series) {
    absl::StrAppend(&out, p.time_s, ",", p.used_gpus, ",", p.free_machines, ",",
                    p.fully_free_domains, ",", p.stranded_machines, ",", p.queue_length, ",",
                    p.preemptions, ",", p.spot_gpu_seconds_lost, ";");
  }
  return out;
}

TEST(DeterminismTest, SameSeedSameRunDifferentSeedDifferentRun) {
  std::vector<TraceJob> trace = Parse(RandomTraceCsv(3000));
  for (RefusalMode mode : {RefusalMode::kDrop, RefusalMode::kWait, RefusalMode::kQueue}) {
    ReplayOptions options = Fleet(4, 8, 4, mode);
    options.sample_interval_s = 600;
    for (const std::string& name : KnownPolicies()) {
      std::string first = WithoutWallTime(RunPolicy(name, trace, options, 7));
      EXPECT_EQ(first, WithoutWallTime(RunPolicy(name, trace, options, 7))) << name;
      if (name == "carbide" || name == "random") {
        EXPECT_NE(first, WithoutWallTime(RunPolicy(name, trace, options, 8))) << name;
      }
    }
  }
  // Spot jobs and preemption too; another spot seed draws other spot jobs.
  ReplayOptions options = Fleet(4, 8, 4, RefusalMode::kQueue);
  options.sample_interval_s = 600;
  options.spot_share = 0.5;
  options.preemption = true;
  ReplayResult first = RunPolicy("best-fit", trace, options);
  EXPECT_GT(first.spot.preemptions, 0);
  EXPECT_EQ(WithoutWallTime(first), WithoutWallTime(RunPolicy("best-fit", trace, options)));
  options.spot_seed = 2;
  EXPECT_NE(WithoutWallTime(first), WithoutWallTime(RunPolicy("best-fit", trace, options)));
}

// ------------------------------------------------------------------ queue mode

// 2 domains x 4 machines x 4 GPUs, best-fit, the same trace in wait and in queue mode.
//   t=0   Q1 3 machines until 50 -> d0 (tie: lowest index); Q2 a whole machine until 100
//         -> d0 (fewest free that suffice); R1, R2 2 machines until 50 / 100 -> d1.
//   t=50  Q1, R1 end: d0 has 3 free, d1 2.
//   t=60  B 4 machines (10 s) fits nowhere: waits in both modes. Queue mode: B holds a
//         reservation on the most free domain, d0.
//   t=61  C 2 machines (10 s). Wait mode: queued behind B (FIFO), not offered. Queue mode:
//         offered outside d0 -> d1 (backfill), wait 0, ends at 71.
//   t=62  D 1 GPU (5 s). Wait mode: placed at once on d0, ends at 67. Queue mode: only d0
//         has free GPUs, and d0 is reserved for B ahead of it: D waits, and starts at 71
//         when C frees d1 (wait 9).
//   t=100 Q2, R2 end: B starts in both modes (wait 40). Wait mode: C starts (wait 39).
// Free GPUs while jobs wait (the window is [0, 62]): wait mode 20 over [60, 62]; queue mode
// 20 over [60, 61), then 12 (C runs) over [61, 62): 16.
TEST(QueueModeTest, BackfillsTheBatchFifoWaitBlocksAndPlacesTheBigBatchNoLater) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,50,12\n2,0,100,4\n3,0,50,8\n4,0,100,8\n"
                                      "5,60,10,16\n6,61,10,8\n7,62,5,1\n");
  ReplayResult wait = RunPolicy("best-fit", trace, Fleet(2, 4, 4, RefusalMode::kWait));
  ReplayResult queue = RunPolicy("best-fit", trace, Fleet(2, 4, 4, RefusalMode::kQueue));
  EXPECT_EQ(wait.mode, RefusalMode::kWait);
  EXPECT_EQ(queue.mode, RefusalMode::kQueue);

  EXPECT_EQ(wait.kind(JobKind::kStrictBatch).queued_behind_batch, 1);  // C
  EXPECT_EQ(wait.wait_batches.max_s, 40);
  EXPECT_DOUBLE_EQ(wait.wait_batches.mean_s, (40 + 39) / 5.0);
  EXPECT_EQ(wait.wait_singles.jobs, 2);
  EXPECT_EQ(wait.wait_singles.max_s, 0);
  EXPECT_EQ(wait.max_queue_length, 2);
  EXPECT_EQ(wait.waiting_s, 2);
  EXPECT_DOUBLE_EQ(wait.mean_free_gpus_while_waiting, 20.0);

  const KindCounts& batches = queue.kind(JobKind::kStrictBatch);
  EXPECT_EQ(batches.queued_behind_batch, 0);  // queue mode offers every arrival
  EXPECT_EQ(batches.placed, 5);  // Q1, R1, R2, B, C
  EXPECT_EQ(batches.refused, 1);            // B
  EXPECT_EQ(batches.placed_after_wait, 1);  // B
  EXPECT_EQ(queue.wait_batches.max_s, 40);  // B: no later than in wait mode
  EXPECT_DOUBLE_EQ(queue.wait_batches.mean_s, 40 / 5.0);  // C waited 0
  EXPECT_EQ(queue.kind(JobKind::kGpuSingle).refused, 1);  // D: free GPUs only in d0
  EXPECT_EQ(queue.kind(JobKind::kGpuSingle).refused_with_room, 1);
  EXPECT_EQ(queue.wait_singles.jobs, 2);
  EXPECT_EQ(queue.wait_singles.max_s, 9);
  EXPECT_DOUBLE_EQ(queue.wait_singles.mean_s, 4.5);
  EXPECT_EQ(queue.max_queue_length, 2);  // B and D
  EXPECT_EQ(queue.queue_at_end, 2);
  EXPECT_EQ(queue.waiting_s, 2);
  EXPECT_DOUBLE_EQ(queue.mean_free_gpus_while_waiting, 16.0);
  for (const ReplayResult* r : {&wait, &queue}) {
    int64_t expired = 0;
    for (const KindCounts& c : r->by_kind) expired += c.expired;
    EXPECT_EQ(expired, 0);
    EXPECT_EQ(r->makespan_s, 110);  // B: 100 + 10 (wait mode: C too)
  }
}

// 1 domain x 2 machines x 4 GPUs, queue_timeout_s = 30. A holds both machines until 100.
//   t=1  B 1 GPU: waits, deadline 31 -> expires.   t=2  C 2 machines: deadline 32 -> expires.
//   t=40 D 1 GPU: deadline 70 -> expires.          t=80 E 1 GPU: deadline 110; A ends at
//   100 -> E starts (wait 20), ends at 110.
// Without a timeout every job is placed in the end.
TEST(QueueModeTest, JobsExpireAfterTheQueueTimeout) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,100,8\n2,1,10,1\n3,2,10,8\n4,40,10,1\n5,80,10,1\n");
  ReplayOptions options = Fleet(1, 2, 4, RefusalMode::kQueue);
  options.queue_timeout_s = 30;
  ReplayResult r = RunPolicy("best-fit", trace, options);
  EXPECT_EQ(r.kind(JobKind::kGpuSingle).expired, 2);
  EXPECT_EQ(r.kind(JobKind::kStrictBatch).expired, 1);
  EXPECT_EQ(r.kind(JobKind::kGpuSingle).placed, 1);
  EXPECT_EQ(r.kind(JobKind::kGpuSingle).placed_after_wait, 1);
  EXPECT_EQ(r.kind(JobKind::kStrictBatch).placed, 1);
  EXPECT_EQ(r.wait_singles.max_s, 20);
  EXPECT_EQ(r.wait_batches.max_s, 0);
  EXPECT_EQ(r.makespan_s, 110);
  EXPECT_EQ(r.max_queue_length, 2);  // B and C, until 31
  // Jobs wait over [1, 32) and [40, 70) and from 80 to the end of the window (80): 61 s.
  EXPECT_EQ(r.waiting_s, 61);
  EXPECT_DOUBLE_EQ(r.mean_free_gpus_while_waiting, 0.0);

  options.queue_timeout_s = 0;
  ReplayResult forever = RunPolicy("best-fit", trace, options);
  for (const KindCounts& c : forever.by_kind) EXPECT_EQ(c.expired, 0);
  EXPECT_EQ(forever.kind(JobKind::kGpuSingle).placed, 3);
  EXPECT_EQ(forever.kind(JobKind::kStrictBatch).placed, 2);
  // In arrival order: at 100, B (1 GPU) starts; C (2 machines) cannot and reserves the
  // domain; D and E still take 1 GPU each on B's machine, which is partly held (only the
  // free machine is held for C); at 110 B, D and E end and C starts.
  EXPECT_EQ(forever.wait_batches.max_s, 108);                   // C: 2 -> 110
  EXPECT_EQ(forever.wait_singles.max_s, 99);                    // B: 1 -> 100
  EXPECT_DOUBLE_EQ(forever.wait_singles.mean_s, (99 + 60 + 20) / 3.0);  // D, E: -> 100
}

// The baselines have no queue of their own: asked to queue, they run FIFO wait mode.
TEST(QueueModeTest, BaselinesRunWaitModeAndReportsLabelThem) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,100,12\n2,1,10,16\n3,2,10,8\n4,3,200,4\n");
  ReplayOptions options = Fleet(1, 4, 4, RefusalMode::kQueue);
  std::vector<ReplayResult> results;
  for (const std::string& name : KnownPolicies()) {
    results.push_back(RunPolicy(name, trace, options));
    EXPECT_EQ(results.back().mode, PolicyCanQueue(name) ? RefusalMode::kQueue : RefusalMode::kWait)
        << name;
    // Wait mode's FIFO rule (WaitModeTest) for the baselines.
    if (!PolicyCanQueue(name)) {
      EXPECT_EQ(results.back().kind(JobKind::kStrictBatch).queued_behind_batch, 1) << name;
    }
  }
  LabelResults(absl::MakeSpan(results));
  EXPECT_EQ(results[0].label, "best-fit@queue");
  EXPECT_EQ(results[1].label, "carbide@wait");
  RunInfo run;
  run.modes = {RefusalMode::kQueue};
  const std::string table = FormatTable(run, results);
  EXPECT_THAT(table, HasSubstr("on_refusal=queue"));
  EXPECT_THAT(table, HasSubstr("in queue mode they run FIFO wait mode"));
  EXPECT_THAT(table, HasSubstr("best-fit@queue"));
  EXPECT_THAT(table, HasSubstr("wait, singles: mean / p99 / max (h)"));
  EXPECT_THAT(table, HasSubstr("free GPUs while jobs wait"));
  EXPECT_THAT(table, HasSubstr("jobs placed / expired"));
  const std::string json = FormatJson(run, results);
  EXPECT_THAT(json, HasSubstr("\"on_refusal\":\"queue\""));
  EXPECT_THAT(json, HasSubstr("\"mode\":\"wait\""));
  EXPECT_THAT(json, HasSubstr("\"wait_singles\":{"));
  EXPECT_THAT(json, HasSubstr("\"mean_free_gpus_while_waiting\":"));
  EXPECT_THAT(json, HasSubstr("\"expired\":0"));
}

// Queue mode on a busy random trace: the allocator's invariants hold after every step,
// every job is placed or expires, and the queue is empty at the end.
TEST(QueueModeTest, RandomTraceDrainsAndKeepsAllocatorInvariants) {
  FleetSpec fleet{4, 8, 4};
  std::vector<TraceJob> trace = Parse(RandomTraceCsv(2000));
  for (int64_t timeout : {int64_t{0}, int64_t{900}}) {
    ReplayOptions options = Fleet(4, 8, 4, RefusalMode::kQueue);
    options.queue_timeout_s = timeout;
    ReplayResult r = RunPolicy("best-fit", trace, options);
    int64_t placed = 0, expired = 0, infeasible = r.kind(JobKind::kInfeasible).submitted;
    for (const KindCounts& c : r.by_kind) {
      placed += c.placed;
      expired += c.expired;
    }
    EXPECT_EQ(placed + expired + infeasible, static_cast<int64_t>(trace.size())) << timeout;
    EXPECT_GT(r.max_queue_length, 0) << timeout;
    EXPECT_EQ(expired > 0, timeout > 0) << timeout;
  }

  // The same path step by step, checking the allocator after each.
  absl::StatusOr<std::unique_ptr<PlacementPolicy>> policy = MakePolicy("best-fit", fleet, 1);
  ASSERT_TRUE(policy.ok()) << policy.status();
  QueueingPolicy* queue = (*policy)->queueing();
  ASSERT_NE(queue, nullptr);
  struct Recorder final : QueueingPolicy::Events {
    std::vector<uint32_t> started;
    void Started(uint32_t job) override { started.push_back(job); }
    void Expired(uint32_t) override {}
    void Preempted(uint32_t) override { ADD_FAILURE() << "nothing is spot here"; }
  } events;
  std::vector<uint32_t> live;
  for (uint32_t job = 0; job < 600; ++job) {
    const JobShape shape = ShapeJob(trace[job].num_gpus, fleet, true);
    if (shape.kind == JobKind::kInfeasible) continue;
    absl::StatusOr<bool> placed = queue->Submit(job, shape, job, kNoDeadline, events);
    ASSERT_TRUE(placed.ok()) << placed.status();
    if (*placed) live.push_back(job);
    if (job % 3 == 0 && !live.empty()) {
      ASSERT_TRUE((*policy)->Release(live.front()).ok());
      live.erase(live.begin());
    }
    events.started.clear();
    ASSERT_TRUE(queue->Schedule(job, events).ok());
    live.insert(live.end(), events.started.begin(), events.started.end());
    const auto& allocator = static_cast<AllocatorPolicy*>(policy->get())->allocator();
    absl::Status invariants = allocator.CheckInvariants();
    ASSERT_TRUE(invariants.ok()) << "after job " << job << ": " << invariants;
  }
  while (!live.empty()) {
    ASSERT_TRUE((*policy)->Release(live.back()).ok());
    live.pop_back();
    events.started.clear();
    ASSERT_TRUE(queue->Schedule(1000, events).ok());
    live.insert(live.end(), events.started.begin(), events.started.end());
  }
  EXPECT_EQ(queue->queue_length(), 0u);
  EXPECT_EQ((*policy)->Stats().used_gpus, 0);
}

// ------------------------------------------------------------------ best-fit adapter

// Drives the real Allocator through the adapter and checks its invariants after every step.
TEST(AllocatorPolicyTest, KeepsAllocatorInvariantsThroughPlaceAndRelease) {
  FleetSpec fleet{3, 4, 4};
  absl::StatusOr<std::unique_ptr<AllocatorPolicy>> policy = AllocatorPolicy::Create(fleet);
  ASSERT_TRUE(policy.ok()) << policy.status();
  std::vector<uint32_t> live;
  uint64_t x = 99;
  auto next = [&x] { return (x = x * 6364136223846793005ull + 1442695040888963407ull) >> 33; };
  static constexpr int kGpus[] = {1, 2, 3, 4, 8, 12, 16, 20};
  for (uint32_t job = 0; job < 400; ++job) {
    if (!live.empty() && next() % 3 == 0) {
      size_t i = next() % live.size();
      ASSERT_TRUE((*policy)->Release(live[i]).ok());
      live.erase(live.begin() + static_cast<long>(i));
    } else {
      absl::StatusOr<bool> placed = (*policy)->TryPlace(job, ShapeJob(kGpus[next() % 8], fleet, true));
      ASSERT_TRUE(placed.ok()) << placed.status();
      if (*placed) live.push_back(job);
    }
    absl::Status invariants = (*policy)->allocator().CheckInvariants();
    ASSERT_TRUE(invariants.ok()) << "after job " << job << ": " << invariants;
    FleetStats stats = (*policy)->Stats();
    ASSERT_EQ(stats.used_gpus + stats.free_gpus, fleet.gpus());
  }
}

TEST(AllocatorPolicyTest, ReleasingAnUnknownJobIsAnError) {
  absl::StatusOr<std::unique_ptr<AllocatorPolicy>> policy = AllocatorPolicy::Create(FleetSpec{1, 2, 4});
  ASSERT_TRUE(policy.ok());
  absl::Status status = (*policy)->Release(42);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(status.message()), HasSubstr("job 42 holds nothing"));
}

// ------------------------------------------------------------------ spot and preemption

TEST(SpotTest, IsSpotJobIsDeterministicAndNearTheShare) {
  int spot = 0;
  int differs = 0;
  for (uint32_t i = 0; i < 100000; ++i) {
    EXPECT_FALSE(IsSpotJob(i, 0.0, 1));
    EXPECT_TRUE(IsSpotJob(i, 1.0, 1));
    const bool drawn = IsSpotJob(i, 0.3, 1);
    EXPECT_EQ(drawn, IsSpotJob(i, 0.3, 1));
    spot += drawn;
    differs += drawn != IsSpotJob(i, 0.3, 2);
  }
  EXPECT_NEAR(spot / 100000.0, 0.3, 0.005);
  EXPECT_GT(differs, 30000);  // another seed draws other jobs (independent draws: ~42%)
}

// The first seed under which IsSpotJob at share 0.5 marks exactly the jobs `spot` says: lets
// a literal trace say which of its jobs are spot.
uint64_t SeedMarkingSpot(const std::vector<bool>& spot) {
  for (uint64_t seed = 1;; ++seed) {
    bool matches = true;
    for (uint32_t i = 0; i < spot.size() && matches; ++i) {
      matches = IsSpotJob(i, 0.5, seed) == spot[i];
    }
    if (matches) return seed;
  }
}

// Records what a queue reports.
struct RecordingEvents final : QueueingPolicy::Events {
  std::vector<uint32_t> started;
  std::vector<uint32_t> expired;
  std::vector<uint32_t> preempted;
  void Started(uint32_t job) override { started.push_back(job); }
  void Expired(uint32_t job) override { expired.push_back(job); }
  void Preempted(uint32_t job) override { preempted.push_back(job); }
};

JobShape Spot(JobShape shape) {
  shape.spot = true;
  return shape;
}

// 2 domains x 4 machines x 4 GPUs, best-fit with preemption, driven job by job.
//   0 on-demand 2 machines -> d0.   1 spot cross-domain 5 machines -> FILL: d0's 2, then 3 in
//   d1.   2 spot whole single -> d1's last machine. The fleet is full.
//   3 on-demand 4 machines at t=10: only d1 can be freed (d0 holds 2 spot machines, not 4);
//     there job 1 has 3 machines and job 2 one: both are killed, job 1 with its 2 machines
//     in d0 as well (whole gangs), and job 3 takes d1. d0's 2 machines are free.
//   4 spot 2 machines at t=20 -> d0.   5 spot whole single at t=21: nothing free; it queues
//     although job 4 could be preempted: spot never preempts.
//   6 the same single, on-demand, at t=22: kills job 4, goes to d0; the pass then places 5.
TEST(PreemptionTest, OnDemandArrivalKillsWholeSpotJobsAndSpotNeverPreempts) {
  FleetSpec fleet{2, 4, 4};
  absl::StatusOr<std::unique_ptr<PlacementPolicy>> made =
      MakePolicy("best-fit", fleet, 1, /*reservation_depth=*/4, /*preemption=*/true);
  ASSERT_TRUE(made.ok()) << made.status();
  auto* policy = static_cast<AllocatorPolicy*>(made->get());
  QueueingPolicy* queue = policy->queueing();
  ASSERT_NE(queue, nullptr);
  EXPECT_TRUE(queue->preempts());
  const JobShape batch2 = ShapeJob(8, fleet, true);
  const JobShape cross5 = ShapeJob(20, fleet, true);
  const JobShape whole = ShapeJob(4, fleet, true);
  const JobShape batch4 = ShapeJob(16, fleet, true);
  ASSERT_EQ(cross5.kind, JobKind::kCrossDomainBatch);
  RecordingEvents events;
  auto submit = [&](uint32_t job, const JobShape& shape, int64_t now) {
    absl::StatusOr<bool> placed = queue->Submit(job, shape, now, kNoDeadline, events);
    EXPECT_TRUE(placed.ok()) << placed.status();
    absl::Status invariants = policy->allocator().CheckInvariants();
    EXPECT_TRUE(invariants.ok()) << "after job " << job << ": " << invariants;
    return placed.ok() && *placed;
  };
  EXPECT_TRUE(submit(0, batch2, 0));
  EXPECT_TRUE(submit(1, Spot(cross5), 0));
  EXPECT_TRUE(submit(2, Spot(whole), 0));
  EXPECT_EQ(policy->Stats().free_machines, 0);

  EXPECT_TRUE(submit(3, batch4, 10));
  EXPECT_THAT(events.preempted, ::testing::ElementsAre(1, 2));
  EXPECT_EQ(policy->allocator().instance_count(), 6u);  // jobs 0 and 3 only
  EXPECT_EQ(policy->Stats().free_machines, 2);          // job 1's machines in d0
  EXPECT_EQ(policy->Stats().largest_domain_free, 2);
  absl::Status gone = policy->Release(1);  // a killed job holds nothing
  EXPECT_EQ(gone.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(gone.message()), HasSubstr("job 1 holds nothing"));

  EXPECT_TRUE(submit(4, Spot(batch2), 20));
  EXPECT_FALSE(submit(5, Spot(whole), 21));
  EXPECT_THAT(events.preempted, ::testing::ElementsAre(1, 2));  // nothing more
  EXPECT_EQ(queue->queue_length(), 1u);

  EXPECT_TRUE(submit(6, whole, 22));
  EXPECT_THAT(events.preempted, ::testing::ElementsAre(1, 2, 4));
  ASSERT_TRUE(queue->Schedule(22, events).ok());
  EXPECT_THAT(events.started, ::testing::ElementsAre(5));
  EXPECT_EQ(queue->queue_length(), 0u);
  EXPECT_EQ(policy->Stats().free_machines, 0);
  EXPECT_TRUE(policy->allocator().CheckInvariants().ok());
}

// 2 domains x 2 machines x 4 GPUs. Spot batches 0 and 1 (2 machines, t=0) fill d0 and d1.
// Spot batch 2 arrives at t=1: it cannot preempt, so it queues, and the pass reserves d0
// for it (both domains have 0 free: the lowest index). An on-demand single at t=2 then may
// not preempt in d0 — where, both victims being alike, it would otherwise go (lowest
// index) — and kills job 1 in d1 instead.
TEST(PreemptionTest, RespectsTheReservationsOfBatchesQueuedAhead) {
  FleetSpec fleet{2, 2, 4};
  for (bool queued_ahead : {false, true}) {
    absl::StatusOr<std::unique_ptr<PlacementPolicy>> made =
        MakePolicy("best-fit", fleet, 1, /*reservation_depth=*/4, /*preemption=*/true);
    ASSERT_TRUE(made.ok()) << made.status();
    auto* policy = static_cast<AllocatorPolicy*>(made->get());
    QueueingPolicy* queue = policy->queueing();
    RecordingEvents events;
    const JobShape batch2 = Spot(ShapeJob(8, fleet, true));
    ASSERT_TRUE(*queue->Submit(0, batch2, 0, kNoDeadline, events));
    ASSERT_TRUE(*queue->Submit(1, batch2, 0, kNoDeadline, events));
    if (queued_ahead) {
      ASSERT_FALSE(*queue->Submit(2, batch2, 1, kNoDeadline, events));
      ASSERT_TRUE(queue->Schedule(1, events).ok());
      ASSERT_EQ(policy->queue().reservations().size(), 1u);
      ASSERT_THAT(policy->queue().reservations()[0].domains, ::testing::ElementsAre(0));
      EXPECT_TRUE(events.preempted.empty());  // spot never preempts
    }
    ASSERT_TRUE(*queue->Submit(3, ShapeJob(4, fleet, true), 2, kNoDeadline, events));
    EXPECT_THAT(events.preempted, ::testing::ElementsAre(queued_ahead ? 1u : 0u)) << queued_ahead;
    EXPECT_TRUE(policy->allocator().CheckInvariants().ok());
  }
}

// 2 domains x 4 machines x 4 GPUs, queue mode; jobs 1 and 2 spot (the seed is found so):
//   t=0   0 on-demand 2 machines (1000 s) -> d0; 1 spot cross-domain 5 machines (1000 s)
//         -> d0 x2 + d1 x3; 2 spot whole single (1000 s) -> d1. Full.
//   t=10  3 on-demand 4 machines (100 s).
// Without preemption job 3 waits for d0 to empty at t=1000: 990 s.
// With it, job 3 kills jobs 1 and 2 (all of d1, and job 1's 2 machines in d0) and starts at
// once: wait 0; lost: 20 GPUs x 10 s + 4 x 10 = 240 GPU-seconds. Resubmitted at t=10, job 1
// (5 machines, 2 free) queues and reserves d0 and d1; job 2 arrives behind it and queues.
// At t=110 job 3 ends: job 1 starts (wait 100, d0 x2 + d1 x3), then job 2 (wait 100); both
// end at 1110. Without resubmission they are simply lost.
TEST(PreemptionTest, PreemptionLowersTheOnDemandWait) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,1000,8\n2,0,1000,20\n3,0,1000,4\n4,10,100,16\n");
  ReplayOptions options = Fleet(2, 4, 4, RefusalMode::kQueue);
  options.spot_share = 0.5;
  options.spot_seed = SeedMarkingSpot({false, true, true, false});
  options.sample_interval_s = 100;

  ReplayResult off = RunPolicy("best-fit", trace, options);
  options.preemption = true;
  ReplayResult on = RunPolicy("best-fit", trace, options);
  options.resubmit_preempted = false;
  ReplayResult lost = RunPolicy("best-fit", trace, options);

  for (const ReplayResult* r : {&off, &on, &lost}) {
    EXPECT_EQ(r->spot.spot_jobs, 2);
    EXPECT_EQ(r->spot.on_demand_jobs, 2);
    EXPECT_EQ(r->spot.on_demand_placed, 2);
  }
  EXPECT_FALSE(off.preemption);
  EXPECT_EQ(off.spot.wait_on_demand.jobs, 2);
  EXPECT_EQ(off.spot.wait_on_demand.p99_s, 990);
  EXPECT_EQ(off.spot.wait_on_demand.p50_s, 0);
  EXPECT_DOUBLE_EQ(off.spot.wait_on_demand.mean_s, 495.0);
  EXPECT_EQ(off.spot.preemptions, 0);
  EXPECT_EQ(off.spot.gpu_seconds_lost, 0);
  EXPECT_EQ(off.spot.wait_spot.max_s, 0);
  EXPECT_EQ(off.makespan_s, 1100);

  EXPECT_TRUE(on.preemption);
  EXPECT_EQ(on.spot.wait_on_demand.max_s, 0);
  EXPECT_EQ(on.spot.wait_on_demand.p99_s, 0);
  EXPECT_EQ(on.spot.preemptions, 2);
  EXPECT_EQ(on.spot.jobs_preempted, 2);
  EXPECT_EQ(on.spot.gpu_seconds_lost, 240);
  EXPECT_EQ(on.spot.evicted_gpus, 24);
  EXPECT_EQ(on.spot.on_demand_preempting, 1);
  EXPECT_EQ(on.spot.preempting_gpus, 16);
  EXPECT_EQ(on.spot.resubmitted, 2);
  EXPECT_EQ(on.spot.wait_spot.jobs, 4);  // two first runs, two resubmissions
  EXPECT_EQ(on.spot.wait_spot.max_s, 100);
  EXPECT_EQ(on.spot.wait_spot.p50_s, 0);
  EXPECT_DOUBLE_EQ(on.spot.wait_spot.mean_s, 50.0);
  EXPECT_EQ(on.kind(JobKind::kStrictBatch).refused, 0);  // job 3 was placed at arrival
  EXPECT_EQ(on.kind(JobKind::kCrossDomainBatch).submitted, 2);  // resubmission = arrival
  EXPECT_EQ(on.kind(JobKind::kCrossDomainBatch).placed_after_wait, 1);
  EXPECT_EQ(on.kind(JobKind::kWholeSingle).placed, 2);
  EXPECT_EQ(on.makespan_s, 1110);
  ASSERT_GE(on.series.size(), 2u);
  EXPECT_EQ(on.series[0].preemptions, 0);   // t=0
  EXPECT_EQ(on.series[1].preemptions, 2);   // t=100
  EXPECT_EQ(on.series[1].spot_gpu_seconds_lost, 240);

  EXPECT_EQ(lost.spot.preemptions, 2);
  EXPECT_EQ(lost.spot.gpu_seconds_lost, 240);
  EXPECT_EQ(lost.spot.resubmitted, 0);
  EXPECT_EQ(lost.spot.wait_spot.jobs, 2);
  EXPECT_EQ(lost.kind(JobKind::kCrossDomainBatch).submitted, 1);
  EXPECT_EQ(lost.makespan_s, 1000);
  EXPECT_EQ(lost.spot.wait_on_demand.max_s, 0);
}

// The same spot jobs everywhere; only best-fit in queue mode preempts.
TEST(PreemptionTest, OnlyBestFitInQueueModePreempts) {
  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,1000,8\n2,0,1000,20\n3,0,1000,4\n4,10,100,16\n");
  ReplayOptions options = Fleet(2, 4, 4);
  options.spot_share = 0.5;
  options.spot_seed = SeedMarkingSpot({false, true, true, false});
  options.preemption = true;
  for (RefusalMode mode : {RefusalMode::kDrop, RefusalMode::kWait, RefusalMode::kQueue}) {
    options.on_refusal = mode;
    for (const std::string& name : KnownPolicies()) {
      ReplayResult r = RunPolicy(name, trace, options);
      const bool preempts = name == "best-fit" && mode == RefusalMode::kQueue;
      EXPECT_EQ(r.preemption, preempts) << name;
      EXPECT_EQ(r.spot.preemptions, preempts ? 2 : 0) << name;
      EXPECT_EQ(r.spot.spot_jobs, 2) << name;
    }
  }
}

// A busy random trace, half spot, preemption on: the allocator's invariants hold after
// every step, and every arrival (resubmissions included) is placed or expires.
TEST(PreemptionTest, RandomTraceKeepsInvariantsAndAccountsForEveryArrival) {
  FleetSpec fleet{4, 8, 4};
  std::vector<TraceJob> trace = Parse(RandomTraceCsv(2000));
  for (int64_t timeout : {int64_t{0}, int64_t{900}}) {
    ReplayOptions options = Fleet(4, 8, 4, RefusalMode::kQueue);
    options.queue_timeout_s = timeout;
    options.spot_share = 0.5;
    options.preemption = true;
    ReplayResult r = RunPolicy("best-fit", trace, options);
    int64_t submitted = 0, placed = 0, expired = 0;
    for (const KindCounts& c : r.by_kind) {
      submitted += c.submitted;
      placed += c.placed;
      expired += c.expired;
    }
    const int64_t infeasible = r.kind(JobKind::kInfeasible).submitted;
    EXPECT_EQ(submitted, static_cast<int64_t>(trace.size()) + r.spot.resubmitted) << timeout;
    EXPECT_EQ(placed + expired + infeasible, submitted) << timeout;
    EXPECT_GT(r.spot.preemptions, 0) << timeout;
    EXPECT_EQ(r.spot.resubmitted, r.spot.preemptions) << timeout;
    EXPECT_GT(r.spot.gpu_seconds_lost, 0) << timeout;
    EXPECT_EQ(r.spot.wait_on_demand.jobs, r.spot.on_demand_placed) << timeout;
  }

  // Job by job through the policy, checking the allocator after each step. One
  // reservation at most: with a job released only every third step the queue grows long,
  // and four holders would reserve every domain, leaving none to preempt in.
  absl::StatusOr<std::unique_ptr<PlacementPolicy>> made =
      MakePolicy("best-fit", fleet, 1, /*reservation_depth=*/1, /*preemption=*/true);
  ASSERT_TRUE(made.ok()) << made.status();
  auto* policy = static_cast<AllocatorPolicy*>(made->get());
  QueueingPolicy* queue = policy->queueing();
  RecordingEvents events;
  std::vector<uint32_t> live;
  int64_t kills = 0;
  auto forget = [&live](uint32_t job) {
    live.erase(std::find(live.begin(), live.end(), job));
  };
  for (uint32_t job = 0; job < 600; ++job) {
    JobShape shape = ShapeJob(trace[job].num_gpus, fleet, true);
    if (shape.kind == JobKind::kInfeasible) continue;
    shape.spot = IsSpotJob(job, 0.5, 1);
    events.preempted.clear();
    absl::StatusOr<bool> placed = queue->Submit(job, shape, job, kNoDeadline, events);
    ASSERT_TRUE(placed.ok()) << placed.status();
    if (!events.preempted.empty()) {
      ASSERT_FALSE(shape.spot);
      ASSERT_TRUE(*placed);
    }
    for (uint32_t killed : events.preempted) {
      ASSERT_TRUE(IsSpotJob(killed, 0.5, 1)) << killed;
      forget(killed);  // a killed job was running
      ++kills;
    }
    if (*placed) live.push_back(job);
    if (job % 3 == 0 && !live.empty()) {
      ASSERT_TRUE(policy->Release(live.front()).ok());
      live.erase(live.begin());
    }
    events.started.clear();
    ASSERT_TRUE(queue->Schedule(job, events).ok());
    live.insert(live.end(), events.started.begin(), events.started.end());
    absl::Status invariants = policy->allocator().CheckInvariants();
    ASSERT_TRUE(invariants.ok()) << "after job " << job << ": " << invariants;
  }
  EXPECT_GT(kills, 0);
  while (!live.empty()) {
    ASSERT_TRUE(policy->Release(live.back()).ok());
    live.pop_back();
    events.started.clear();
    ASSERT_TRUE(queue->Schedule(1000, events).ok());
    live.insert(live.end(), events.started.begin(), events.started.end());
  }
  EXPECT_EQ(queue->queue_length(), 0u);
  EXPECT_EQ(policy->Stats().used_gpus, 0);
}

// --preemption=off,on in one run: best-fit runs twice, side by side; the baselines once
// (they have no notion of spot); the report shows both and says what preempts.
TEST(RunPlanTest, PreemptionOffOnRunsBothSideBySide) {
  absl::StatusOr<std::vector<bool>> settings = ParsePreemption("off,on");
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_THAT(*settings, ::testing::ElementsAre(false, true));
  for (const char* bad : {"maybe", "on,on", ""}) {
    absl::StatusOr<std::vector<bool>> parsed = ParsePreemption(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("--preemption")) << bad;
  }
  absl::StatusOr<std::vector<RefusalMode>> modes = ParseRefusalModes("queue");
  ASSERT_TRUE(modes.ok()) << modes.status();

  std::vector<TraceJob> trace = Parse("job_id,submit_s,duration_s,num_gpus\n"
                                      "1,0,1000,8\n2,0,1000,20\n3,0,1000,4\n4,10,100,16\n");
  ReplayOptions base = Fleet(2, 4, 4);
  base.spot_share = 0.5;
  base.spot_seed = SeedMarkingSpot({false, true, true, false});
  std::vector<PlannedRun> runs = PlanRuns(base, *modes, *settings, KnownPolicies());
  ASSERT_EQ(runs.size(), 5u);
  EXPECT_EQ(runs[0].policy, "best-fit");
  EXPECT_FALSE(runs[0].options.preemption);
  EXPECT_EQ(runs[1].policy, "best-fit");
  EXPECT_TRUE(runs[1].options.preemption);
  for (size_t i = 2; i < runs.size(); ++i) EXPECT_FALSE(runs[i].options.preemption) << i;
  // Asked for wait and queue, a baseline still runs once.
  // best-fit: wait, queue, queue+preempt; each baseline: wait.
  EXPECT_EQ(PlanRuns(base, {RefusalMode::kWait, RefusalMode::kQueue}, *settings,
                     KnownPolicies()).size(), 6u);

  std::vector<ReplayResult> results;
  for (const PlannedRun& run : runs) results.push_back(RunPolicy(run.policy, trace, run.options));
  LabelResults(absl::MakeSpan(results));
  EXPECT_EQ(results[0].label, "best-fit@queue");
  EXPECT_EQ(results[1].label, "best-fit@queue+preempt");
  EXPECT_EQ(results[2].label, "carbide@wait");
  RunInfo info;
  info.modes = *modes;
  info.preemption = *settings;
  const std::string table = FormatTable(info, results);
  EXPECT_THAT(table, HasSubstr("best-fit@queue+preempt"));
  EXPECT_THAT(table, HasSubstr("preemption=off,on"));
  EXPECT_THAT(table, HasSubstr("Grace period 0"));
  EXPECT_THAT(table, HasSubstr("run as with preemption off"));
  EXPECT_THAT(table, HasSubstr("wait, on-demand: mean / p50 / p99 (h)"));
  EXPECT_THAT(table, HasSubstr("wait, spot: mean / p50 / p99 (h)"));
  EXPECT_THAT(table, HasSubstr("spot GPU-hours lost"));
  EXPECT_THAT(table, HasSubstr("1 of 2 (50.00%)"));  // job 3 placed by preempting
  const std::string json = FormatJson(info, results);
  EXPECT_THAT(json, HasSubstr("\"preemption\":\"off,on\""));
  EXPECT_THAT(json, HasSubstr("\"preemption\":true"));
  EXPECT_THAT(json, HasSubstr("\"gpu_seconds_lost\":240"));
}

}  // namespace
}  // namespace nvlsched::replay
