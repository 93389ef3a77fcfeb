// Benchmarks of the gang queue (allocator/gang_queue.h) on a 100-domain fleet (1,800
// machines, 4 GPUs each), part of nvlsched_core_bench:
//   BM_QueueEnqueue                   Insert + Remove of one request with N queued
//   BM_QueueReleaseNothingPlaceable   one pass after a release that places nothing, N queued
//                                     strict batches of 18 (no domain has 18 free)
//   BM_QueueReleaseHeadPlaceable      one pass after a release whose machine the queue's head
//                                     (a whole-machine single) takes, N - 1 batches behind it
// The passes are timed alone (manual time around Schedule): the release and the bookkeeping
// that puts the fleet back are outside the figure.
//
//   build/bin/nvlsched_core_bench --benchmark_filter=Queue
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "allocator/allocator.h"
#include "allocator/gang_queue.h"
#include "benchmark/benchmark.h"

namespace nvlsched::allocator {
namespace {

constexpr int kDomains = 100;
constexpr int kDomainSize = 18;
constexpr char kType[] = "gb200";
constexpr char kTenant[] = "bench";

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "setup failed: %s\n", status.ToString().c_str());
    std::abort();
  }
}

std::string Id(const char* kind, int n) { return std::string(kind) + std::to_string(n); }

// 100 domains of 18; every domain has between 1 and 17 machines held by whole-machine
// singles (so no strict batch of 18 fits anywhere). Returns the handles of the holders by
// machine index (domain * 18 + tray), invalid where free.
Allocator Fleet(std::vector<InstanceHandle>* holders) {
  Allocator alloc;
  Check(alloc.UpsertInstanceType({kType, "gb200-tray", "GB200", 4, 189000, 4000000, "nvlink5"}));
  Check(alloc.UpsertTenant({kTenant, "bench", "bench", {{kType, 1 << 30}}}));
  holders->assign(kDomains * kDomainSize, InstanceHandle{});
  for (int d = 0; d < kDomains; ++d) {
    Check(alloc.UpsertDomain({Id("d", d), "nvl72-" + std::to_string(d), "site-1"}));
    const int held = 1 + (d * 7) % 17;
    for (int t = 0; t < kDomainSize; ++t) {
      const int m = d * kDomainSize + t;
      Check(alloc.UpsertMachine({Id("m", m), Id("d", d), t, kType, 4}));
      if (t < held) {
        InstanceClaim claim;
        claim.tenant_id = kTenant;
        claim.instance_type_id = kType;
        claim.machine_id = Id("m", m);
        absl::StatusOr<InstanceHandle> h = alloc.RestoreInstance(claim);
        Check(h.status());
        (*holders)[static_cast<size_t>(m)] = *h;
      }
    }
  }
  Check(alloc.CheckInvariants());
  alloc.ClearJournal();
  return alloc;
}

QueuedRequest StrictBatch(uint64_t sequence, int count) {
  QueuedRequest r;
  r.sequence = sequence;
  r.deadline_micros = INT64_MAX;
  r.is_batch = true;
  r.batch = BatchRequest{kTenant, kType, count, true, SpreadPolicy::kFill, {}};
  r.gpus = int64_t{count} * 4;
  return r;
}

QueuedRequest WholeSingle(uint64_t sequence, int32_t priority) {
  QueuedRequest r;
  r.sequence = sequence;
  r.priority = priority;
  r.deadline_micros = INT64_MAX;
  r.is_batch = false;
  r.single = SingleRequest{kTenant, kType, 0, "", {}};
  r.gpus = 4;
  return r;
}

// Applies what a pass places and keeps the last handle.
class ApplyingSink : public GangQueue::Sink {
 public:
  explicit ApplyingSink(Allocator& alloc) : alloc_(alloc) {}
  void Placed(const QueuedRequest&, const Placement& placement) override {
    handles_.resize(placement.size());
    alloc_.Apply(placement, "", absl::MakeSpan(handles_));
    ++placed;
  }
  void Expired(const QueuedRequest&) override {}
  InstanceHandle last() const { return handles_.empty() ? InstanceHandle{} : handles_[0]; }
  size_t placed = 0;

 private:
  Allocator& alloc_;
  std::vector<InstanceHandle> handles_;
};

void Release(Allocator& alloc, InstanceHandle h) {
  absl::StatusOr<ReleasePlan> plan = alloc.PlanRelease(absl::MakeConstSpan(&h, 1), false);
  Check(plan.status());
  alloc.Apply(*plan);
}

void BM_QueueEnqueue(benchmark::State& state) {
  std::vector<InstanceHandle> holders;
  Allocator alloc = Fleet(&holders);
  GangQueue queue;
  const int queued = static_cast<int>(state.range(0));
  uint64_t sequence = 0;
  for (int i = 0; i < queued; ++i) queue.Insert(alloc, StrictBatch(++sequence, 2 + i % 17));
  for (auto _ : state) {
    const uint64_t s = ++sequence;
    queue.Insert(alloc, StrictBatch(s, 18));
    benchmark::DoNotOptimize(queue.Remove(s));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_QueueEnqueue)->ArgName("queued")->Arg(10000);

void BM_QueueReleaseNothingPlaceable(benchmark::State& state) {
  std::vector<InstanceHandle> holders;
  Allocator alloc = Fleet(&holders);
  alloc.ClearJournal();
  GangQueue queue;
  const int queued = static_cast<int>(state.range(0));
  for (int i = 0; i < queued; ++i) queue.Insert(alloc, StrictBatch(static_cast<uint64_t>(i + 1), 18));
  ApplyingSink sink(alloc);
  queue.Schedule(alloc, 0, sink);
  if (sink.placed != 0 || queue.reservations().empty()) {
    std::fprintf(stderr, "setup: expected nothing placeable and reservations\n");
    std::abort();
  }
  // Release and re-take a machine of domain 12 (17 of 18 held: freeing one leaves the most
  // free anywhere at 17, still short of a batch of 18) each iteration.
  SingleRequest retake{kTenant, kType, 0, "", {}};
  InstanceHandle holder = holders[12 * kDomainSize];
  std::vector<InstanceHandle> scratch(1);
  for (auto _ : state) {
    Release(alloc, holder);
    const auto start = std::chrono::steady_clock::now();
    size_t placed = queue.Schedule(alloc, 0, sink);
    const auto end = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(placed);
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
    // Take a free machine back (best fit picks the same domain: it has the fewest free).
    absl::StatusOr<Placement> plan = alloc.PlanSingle(retake);
    Check(plan.status());
    alloc.Apply(*plan, "", absl::MakeSpan(scratch));
    holder = scratch[0];
    alloc.ClearJournal();
  }
  if (sink.placed != 0) std::fprintf(stderr, "a pass placed something\n");
  state.counters["reservations"] = static_cast<double>(queue.reservations().size());
}
BENCHMARK(BM_QueueReleaseNothingPlaceable)->ArgName("queued")->Arg(10000)->UseManualTime();

void BM_QueueReleaseHeadPlaceable(benchmark::State& state) {
  std::vector<InstanceHandle> holders;
  Allocator alloc = Fleet(&holders);
  GangQueue queue;
  const int queued = static_cast<int>(state.range(0));
  uint64_t sequence = 0;
  for (int i = 1; i < queued; ++i) queue.Insert(alloc, StrictBatch(++sequence, 18));
  ApplyingSink sink(alloc);
  queue.Schedule(alloc, 0, sink);
  // The machine released each time: one of domain 12 (17 of 18 held), never a reserved one
  // (those are the domains with the most free).
  InstanceHandle holder = holders[12 * kDomainSize + 16];
  for (auto _ : state) {
    queue.Insert(alloc, WholeSingle(++sequence, /*priority=*/1));  // the head
    Release(alloc, holder);
    const auto start = std::chrono::steady_clock::now();
    size_t placed = queue.Schedule(alloc, 0, sink);
    const auto end = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(end - start).count());
    if (placed != 1) {
      state.SkipWithError("the head was not placed");
      break;
    }
    holder = sink.last();
    alloc.ClearJournal();
  }
  state.counters["reservations"] = static_cast<double>(queue.reservations().size());
}
BENCHMARK(BM_QueueReleaseHeadPlaceable)->ArgName("queued")->Arg(10000)->UseManualTime();

}  // namespace
}  // namespace nvlsched::allocator
