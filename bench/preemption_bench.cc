// Benchmark of preemption planning (allocator/preemption_policy.h), part of
// nvlsched_core_bench:
//   BM_PlanPreemptionStrict18   Allocator::PlanPreemption for an on-demand strict batch of 18
//                               GB200 trays (one whole NVL72 domain's worth)
// on fleets of 18-tray domains (4 GPUs per tray) with 90% of the machines held, half of the
// held ones by spot instances. The fleet is built by placing seeded random strict batches of
// 2..18, alternately spot and on demand, then whole-machine singles (alternating too) up to
// 90%, each placed at a random time in the last day (what GPU-seconds weigh). Layouts:
//   packed     every placement goes where the allocator's best fit puts it (PlanBatch as is):
//              domains fill one after another and some stay whole and free, so PlanBatch alone
//              would place the batch (the planner never looks there: no spot machine)
//   scattered  every placement is pinned to a random domain with room (PlanConstraints::
//              pinned_domain): holdings, spot and free machines spread over every domain, and
//              no domain has 18 free, so PlanBatch really refuses the batch
//   small_spot scattered, but spot batches are at most 8 machines: no domain can be freed by
//              evicting one gang, so the walk's early stop (a one-gang candidate, then
//              kPreemptionCandidates more) never comes and every candidate is evaluated
// Planning is const, so one fleet serves every iteration (built once per size and layout).
// Counters: victims and gangs of the plan; candidates = domains whose free plus reclaimable
// machines reach 18 (where the policy looks); batch_fits = 1 when PlanBatch alone would place
// the batch; allocs_per_iter as in core_bench.cc.
//
//   build/bin/nvlsched_core_bench --benchmark_filter=Preempt --benchmark_repetitions=5
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "allocator/allocator.h"
#include "benchmark/benchmark.h"
#include "tests/testing/counting_allocator.h"

namespace nvlsched::allocator {
namespace {

constexpr int kDomainSize = 18;
constexpr char kType[] = "gb200";
constexpr char kOnDemand[] = "bench";  // the requester, and the on-demand holders
constexpr char kSpot[] = "bench-spot";
constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kNow = 10'000'000 * kSecond;
constexpr int64_t kDay = 86'400 * kSecond;

enum Layout { kPacked = 0, kScattered = 1, kSmallSpot = 2 };
constexpr int kSmallSpotBatch = 8;
const char* const kLayoutNames[] = {"packed", "scattered", "small_spot"};

void Check(const absl::Status& status) {
  if (!status.ok()) {
    std::fprintf(stderr, "setup failed: %s\n", status.ToString().c_str());
    std::abort();
  }
}

struct SpotFleet {
  Allocator alloc;
  int64_t machines = 0;
  int64_t held = 0;
  int64_t spot_held = 0;
  int candidates = 0;
};

class FleetBuilder {
 public:
  FleetBuilder(SpotFleet& fleet, Layout layout) : fleet_(fleet), layout_(layout), rng_(42) {}

  void Build(int domains) {
    Allocator& alloc = fleet_.alloc;
    Check(alloc.UpsertInstanceType({kType, "gb200-tray", "GB200", 4, 189000, 4000000, "nvlink5"}));
    Check(alloc.UpsertTenant({kOnDemand, "bench", "bench", {{kType, 1 << 30}}}));
    Check(alloc.UpsertTenant({kSpot, "bench-spot", "bench-spot", {{kType, 1 << 30}}}));
    for (int d = 0; d < domains; ++d) {
      const std::string domain = "d" + std::to_string(d);
      Check(alloc.UpsertDomain({domain, "nvl72-" + std::to_string(d), "site-1"}));
      for (int t = 0; t < kDomainSize; ++t) {
        Check(alloc.UpsertMachine({domain + "-" + std::to_string(t), domain, t, kType, 4}));
      }
    }
    fleet_.machines = int64_t{domains} * kDomainSize;
    type_ = alloc.TypeIndexOf(kType);
    const int64_t target = fleet_.machines * 9 / 10;
    // Batches while one more of any size fits under the target; a run of refusals (no domain
    // with room for that size) ends the phase early.
    std::uniform_int_distribution<int> size(2, kDomainSize);
    for (int refused = 0; fleet_.held + kDomainSize <= target && refused < 64;) {
      refused = Place(size(rng_)) ? 0 : refused + 1;
    }
    while (fleet_.held < target) {
      if (!Place(1)) {
        std::fprintf(stderr, "setup: no room for a single at %lld held\n",
                     static_cast<long long>(fleet_.held));
        std::abort();
      }
    }
    fleet_.spot_held = alloc.ReclaimableMachines(type_);
    for (DomainIndex d = 0; d < alloc.domain_count(); ++d) {
      const int reclaimable = alloc.DomainReclaimableMachines(type_, d);
      if (reclaimable > 0 && alloc.DomainFreeMachines(type_, d) + reclaimable >= kDomainSize) {
        ++fleet_.candidates;
      }
    }
    Check(alloc.CheckInvariants());
    alloc.ClearJournal();
  }

 private:
  // A random domain with at least k free machines (a few tries), or kNoIndex.
  DomainIndex RandomDomainWithRoom(int k) {
    std::uniform_int_distribution<DomainIndex> pick(0, fleet_.alloc.domain_count() - 1);
    for (int attempt = 0; attempt < 64; ++attempt) {
      const DomainIndex d = pick(rng_);
      if (fleet_.alloc.DomainFreeMachines(type_, d) >= k) return d;
    }
    return kNoIndex;
  }

  // Places k machines (a strict batch, or a whole-machine single for k == 1), spot every
  // other time; false when nothing has room.
  bool Place(int k) {
    Allocator& alloc = fleet_.alloc;
    spot_ = !spot_;
    if (layout_ == kSmallSpot && spot_) k = std::min(k, kSmallSpotBatch);
    PlanConstraints constraints;
    if (layout_ != kPacked) {
      constraints.pinned_domain = RandomDomainWithRoom(k);
      if (constraints.pinned_domain == kNoIndex) return false;
    }
    const char* tenant = spot_ ? kSpot : kOnDemand;
    absl::StatusOr<Placement> plan =
        k == 1 ? alloc.PlanSingle(SingleRequest{tenant, kType, 0, "", {}, spot_}, constraints)
               : alloc.PlanBatch(
                     BatchRequest{tenant, kType, k, true, SpreadPolicy::kFill, {}, spot_},
                     constraints);
    if (!plan.ok()) return false;
    plan->started_micros = kNow - std::uniform_int_distribution<int64_t>(0, kDay)(rng_);
    handles_.resize(plan->size());
    alloc.Apply(*plan, k == 1 ? "" : "b" + std::to_string(++batches_), absl::MakeSpan(handles_));
    fleet_.held += k;
    return true;
  }

  SpotFleet& fleet_;
  Layout layout_;
  std::mt19937 rng_;
  TypeIndex type_ = kNoIndex;
  bool spot_ = false;
  int batches_ = 0;
  std::vector<InstanceHandle> handles_;
};

// Built once per (domains, layout): repetitions and the timing loop share it.
const SpotFleet& FleetOf(int domains, Layout layout) {
  static std::map<std::pair<int, int>, std::unique_ptr<SpotFleet>> fleets;
  std::unique_ptr<SpotFleet>& fleet = fleets[{domains, layout}];
  if (fleet == nullptr) {
    fleet = std::make_unique<SpotFleet>();
    FleetBuilder(*fleet, layout).Build(domains);
  }
  return *fleet;
}

double Fastest(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

// Args = {machines (rounded up to whole domains), layout}.
void BM_PlanPreemptionStrict18(benchmark::State& state) {
  const int domains = static_cast<int>((state.range(0) + kDomainSize - 1) / kDomainSize);
  const Layout layout = static_cast<Layout>(state.range(1));
  const SpotFleet& fleet = FleetOf(domains, layout);
  const Allocator& alloc = fleet.alloc;
  const BatchRequest request{kOnDemand, kType, kDomainSize};
  const PlanConstraints constraints;
  absl::StatusOr<PreemptionPlan> first = alloc.PlanPreemption(request, constraints, kNow);
  if (!first.ok()) {
    state.SkipWithError(std::string(first.status().message()).c_str());
    return;
  }
  const long long before = ::nvlsched::testing::AllocationCount();
  for (auto _ : state) {
    absl::StatusOr<PreemptionPlan> plan = alloc.PlanPreemption(request, constraints, kNow);
    benchmark::DoNotOptimize(plan);
  }
  const long long allocations = ::nvlsched::testing::AllocationCount() - before;
  state.SetItemsProcessed(state.iterations());
  state.counters["victims"] = static_cast<double>(first->victims.size());
  state.counters["gangs"] = first->gangs;
  state.counters["candidates"] = fleet.candidates;
  state.counters["batch_fits"] = alloc.PlanBatch(request).ok() ? 1 : 0;
  state.counters["held_pct"] =
      100.0 * static_cast<double>(fleet.held) / static_cast<double>(fleet.machines);
  state.counters["spot_pct_of_held"] =
      100.0 * static_cast<double>(fleet.spot_held) / static_cast<double>(fleet.held);
  state.counters["allocs_per_iter"] =
      static_cast<double>(allocations) / static_cast<double>(state.iterations());
  state.SetLabel(kLayoutNames[layout]);
}
BENCHMARK(BM_PlanPreemptionStrict18)
    ->ArgNames({"machines", "layout"})
    ->ArgsProduct({{1800, 10000, 100000}, {kPacked, kScattered, kSmallSpot}})
    ->ComputeStatistics("min", Fastest);

}  // namespace
}  // namespace nvlsched::allocator
