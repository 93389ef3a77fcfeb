// Tests allocator/preemption_policy.h through Allocator::PlanPreemption / MarkPreempted,
// and PlanConstraints::pinned_domain (where the preemptor then goes).
//
// Fleets are literal layouts, one string per domain and one character per tray:
//   '.'  free                 '#'  held whole by an on-demand instance (tenant acme)
//   'A'  held whole by spot gang A (see its GangRow: a batch or a single, tenant, start)
//   'a'  held whole by gang A, but the machine is in MAINTENANCE (never reclaimable)
//   '*'  all 4 GPUs held by a GPU-granular spot single of spotco (never evicted)
// A batch letter found in two domains is a cross-domain spot batch (topology_optimized =
// false). Instances are named "<letter>@<machine>", so a victim's gang is its first letter.
// The requester is acme, on demand; the clock reads kNow.
#include "allocator/preemption_policy.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "allocator/allocator.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::DomainRow;
using ::nvlsched::allocator::testing::kAcme;
using ::nvlsched::allocator::testing::kGb200;
using ::nvlsched::allocator::testing::MachineName;
using ::nvlsched::allocator::testing::Snapshot;
using ::nvlsched::allocator::testing::TestFleet;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

constexpr char kSpotCo[] = "spotco";
constexpr int64_t kSecond = 1'000'000;
constexpr int64_t kNow = 1000 * kSecond;

struct GangRow {
  char letter;
  bool batch;           // false: a spot single (its letter appears once)
  std::string tenant;   // kSpotCo, or kAcme: the requester's own
  int64_t started_s;    // Placement::started_micros, in seconds
  bool preempted = false;  // restored as already chosen by an earlier preemption
};

struct Layout {
  std::vector<std::pair<std::string, std::string>> domains;  // id, trays
  std::vector<GangRow> gangs;
};

const GangRow* FindGang(const Layout& layout, char letter) {
  for (const GangRow& gang : layout.gangs) {
    if (gang.letter == letter) return &gang;
  }
  return nullptr;
}

// Builds the layout with RestoreInstance, as start-up recovery would.
TestFleet Build(const Layout& layout) {
  std::vector<DomainRow> rows;
  for (const auto& [id, trays] : layout.domains) {
    rows.push_back({id, "s1", static_cast<int>(trays.size())});
  }
  TestFleet fleet(rows);
  EXPECT_OK(fleet.alloc().UpsertTenant({kSpotCo, "spot-org", "spotco", {{kGb200, 100000}}}));
  std::map<char, int> domains_of;  // how many domains each letter appears in
  for (const auto& [id, trays] : layout.domains) {
    std::string letters;
    for (char c : trays) {
      char upper = static_cast<char>(std::toupper(c));
      if (std::isalpha(c) && letters.find(upper) == std::string::npos) letters += upper;
    }
    for (char c : letters) ++domains_of[c];
  }
  for (const auto& [id, trays] : layout.domains) {
    for (int tray = 0; tray < static_cast<int>(trays.size()); ++tray) {
      const char c = trays[tray];
      const std::string machine = MachineName(id, tray);
      if (c == '.') continue;
      if (c == '#') {
        fleet.HoldWhole({machine});
        continue;
      }
      InstanceClaim claim;
      claim.instance_type_id = kGb200;
      claim.machine_id = machine;
      claim.spot = true;
      if (c == '*') {
        claim.tenant_id = kSpotCo;
        claim.whole_machine = false;
        claim.gpu_count = 4;
        claim.started_micros = kNow - kSecond;
        EXPECT_OK(fleet.Restore(absl::StrCat("*@", machine), claim));
        continue;
      }
      const char letter = static_cast<char>(std::toupper(c));
      const GangRow* gang = FindGang(layout, letter);
      EXPECT_NE(gang, nullptr) << "no GangRow for " << letter;
      if (gang == nullptr) continue;
      claim.tenant_id = gang->tenant;
      claim.batch_id = gang->batch ? absl::StrCat("spot-", std::string(1, letter)) : "";
      claim.topology_optimized = domains_of[letter] == 1;
      claim.started_micros = gang->started_s * kSecond;
      claim.preempted = gang->preempted;
      EXPECT_OK(fleet.Restore(absl::StrCat(std::string(1, letter), "@", machine), claim));
      if (std::islower(c)) {
        EXPECT_OK(fleet.alloc().SetMachineState(machine, MachineState::kMaintenance, "drained"));
      }
    }
  }
  EXPECT_OK(fleet.alloc().CheckInvariants());
  fleet.alloc().ClearJournal();
  return fleet;
}

// Every instance of the gangs, gang by gang in the order given, each in layout order (domain
// order, then tray): the order handles were handed out, so the order the plan lists them.
std::vector<std::string> InstancesOf(const Layout& layout, const std::string& letters) {
  std::vector<std::string> out;
  for (char letter : letters) {
    for (const auto& [id, trays] : layout.domains) {
      for (int tray = 0; tray < static_cast<int>(trays.size()); ++tray) {
        if (std::toupper(trays[tray]) == letter) {
          out.push_back(absl::StrCat(std::string(1, letter), "@", MachineName(id, tray)));
        }
      }
    }
  }
  return out;
}

std::vector<std::string> VictimIds(const TestFleet& fleet, const PreemptionPlan& plan) {
  std::vector<std::string> out;
  for (InstanceHandle h : plan.victims) out.push_back(fleet.IdOf(h));
  return out;
}

// The victims' gangs, in the order the plan takes them.
std::string GangsOf(const std::vector<std::string>& victims) {
  std::string letters;
  for (const std::string& id : victims) {
    if (letters.find(id[0]) == std::string::npos) letters += id[0];
  }
  return letters;
}

std::vector<DomainIndex> Indices(const Allocator& alloc, const std::vector<std::string>& ids) {
  std::vector<DomainIndex> out;
  for (const std::string& id : ids) out.push_back(alloc.DomainIndexOf(id));
  return out;
}

absl::StatusOr<PreemptionPlan> PreemptFor(TestFleet& fleet, int k,
                                          const std::vector<std::string>& excluded = {}) {
  std::vector<DomainIndex> indices = Indices(fleet.alloc(), excluded);
  PlanConstraints constraints;
  constraints.excluded_domains = indices;
  return fleet.alloc().PlanPreemption(BatchRequest{kAcme, kGb200, k}, constraints, kNow);
}

// Releases the plan's victims (after MarkPreempted, as the daemon does once they stopped).
void MarkAndRelease(TestFleet& fleet, const PreemptionPlan& plan) {
  fleet.alloc().MarkPreempted(plan);
  ASSERT_OK(fleet.alloc().CheckInvariants());
  ASSERT_OK(fleet.Release(VictimIds(fleet, plan)));
  ASSERT_OK(fleet.alloc().CheckInvariants());
}

// Instances with their spot state, by id, and reclaimable machines per domain: what
// MarkPreempted, RollbackTo and RestoreInstance must agree on (handles aside).
std::string SpotState(TestFleet& fleet) {
  std::vector<std::string> lines;
  fleet.alloc().ForEachInstance([&](InstanceHandle h, const InstanceClaim& c) {
    lines.push_back(absl::StrCat(fleet.IdOf(h), " ", c.tenant_id, " batch=", c.batch_id,
                                 c.spot ? " spot" : "", c.preempted ? " preempted" : "",
                                 " started=", c.started_micros));
  });
  std::sort(lines.begin(), lines.end());
  const Allocator& alloc = fleet.alloc();
  const TypeIndex t = alloc.TypeIndexOf(kGb200);
  for (DomainIndex d = 0; d < alloc.domain_count(); ++d) {
    lines.push_back(absl::StrCat(alloc.DomainAt(d).id, " reclaimable=",
                                 alloc.DomainReclaimableMachines(t, d)));
  }
  lines.push_back(absl::StrCat("reclaimable=", alloc.ReclaimableMachines(t)));
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

// ---------------------------------------------------------------- Which gangs, where

struct ChoiceCase {
  const char* name;
  Layout layout;
  int k;
  std::vector<std::string> excluded;
  std::string domain;  // empty: RESOURCE_EXHAUSTED
  std::string gangs;   // victim gangs, in the order taken
  int64_t gpu_seconds;
  bool own_tenant;
};

// GPU-seconds = GPUs of the whole gang x seconds run at kNow (1000 s); 4 GPUs per machine.
const ChoiceCase kChoiceCases[] = {
    // (a) across domains: fewest gangs, then fewest GPU-seconds, then lowest index.
    {"fewer gangs beat younger gangs",
     {{{"d0", "ABCD"}, {"d1", "EEEE"}},
      {{'A', false, kSpotCo, 990}, {'B', false, kSpotCo, 990}, {'C', false, kSpotCo, 990},
       {'D', false, kSpotCo, 990}, {'E', true, kSpotCo, 0}}},
     4, {}, "d1", "E", 16 * 1000, false},
    {"equal gangs: the younger (fewer GPU-seconds) wins",
     {{{"d0", "AAAA"}, {"d1", "BBBB"}}, {{'A', true, kSpotCo, 0}, {'B', true, kSpotCo, 900}}},
     4, {}, "d1", "B", 16 * 100, false},
    {"GPU-seconds weigh GPUs: an older small gang beats a younger large one",
     {{{"d0", "..AA"}, {"d1", "BBBB"}}, {{'A', true, kSpotCo, 500}, {'B', true, kSpotCo, 600}}},
     4, {}, "d0", "A", 8 * 500, false},
    {"equal gangs and GPU-seconds: the lowest domain index",
     {{{"d0", "##AA"}, {"d1", "BBBB"}, {"d2", "CCCC"}},
      {{'A', true, kSpotCo, 500}, {'B', true, kSpotCo, 500}, {'C', true, kSpotCo, 500}}},
     4, {}, "d1", "B", 16 * 500, false},
    {"two gangs against three",
     {{{"d0", "AABC"}, {"d1", "DDDE"}},
      {{'A', true, kSpotCo, 0}, {'B', false, kSpotCo, 0}, {'C', false, kSpotCo, 0},
       {'D', true, kSpotCo, 0}, {'E', false, kSpotCo, 0}}},
     4, {}, "d1", "DE", (12 + 4) * 1000, false},
    // Inside the chosen domain.
    {"the gang with the most machines here goes first",
     {{{"d0", ".AABBB"}}, {{'A', true, kSpotCo, 999}, {'B', true, kSpotCo, 0}}},
     4, {}, "d0", "B", 12 * 1000, false},
    {"equal machines here: the youngest goes first",
     {{{"d0", "..AABB"}}, {{'A', true, kSpotCo, 0}, {'B', true, kSpotCo, 900}}},
     4, {}, "d0", "B", 8 * 100, false},
    // (b) a cross-domain spot batch is evicted whole, its instances in d1 too.
    {"a cross-domain spot batch is evicted whole",
     {{{"d0", "XX.."}, {"d1", "XXYY"}}, {{'X', true, kSpotCo, 900}, {'Y', true, kSpotCo, 999}}},
     4, {}, "d0", "X", 16 * 100, false},
    // (c) nothing on demand is ever chosen; drained and GPU-granular spot are not reclaimable.
    {"a domain with an on-demand holder cannot be reached",
     {{{"d0", "AA#."}, {"d1", "BCDE"}},
      {{'A', true, kSpotCo, 999}, {'B', false, kSpotCo, 0}, {'C', false, kSpotCo, 0},
       {'D', false, kSpotCo, 0}, {'E', false, kSpotCo, 0}}},
     4, {}, "d1", "BCDE", 4 * 4 * 1000, false},
    {"on-demand holders everywhere: RESOURCE_EXHAUSTED",
     {{{"d0", "AAA#"}, {"d1", "B###"}}, {{'A', true, kSpotCo, 0}, {'B', false, kSpotCo, 0}}},
     4, {}, "", "", 0, false},
    {"a spot machine in maintenance is not reclaimable",
     {{{"d0", "AAAa"}}, {{'A', true, kSpotCo, 0}}}, 4, {}, "", "", 0, false},
    {"GPU-granular spot instances are never evicted",
     {{{"d0", "AAA*"}}, {{'A', true, kSpotCo, 0}}}, 4, {}, "", "", 0, false},
    // (d) the requester's own gangs only when nothing else works.
    {"own gangs are passed over while others work, even at more gangs",
     {{{"d0", "OOOO"}, {"d1", "ABCD"}},
      {{'O', true, kAcme, 999}, {'A', false, kSpotCo, 0}, {'B', false, kSpotCo, 0},
       {'C', false, kSpotCo, 0}, {'D', false, kSpotCo, 0}}},
     4, {}, "d1", "ABCD", 4 * 4 * 1000, false},
    {"own gangs when nothing else works",
     {{{"d0", "OOOO"}, {"d1", "AB##"}},
      {{'O', true, kAcme, 999}, {'A', false, kSpotCo, 0}, {'B', false, kSpotCo, 0}}},
     4, {}, "d0", "O", 16 * 1, true},
    {"own gangs together with others when nothing else works",
     {{{"d0", "OOAA"}, {"d1", "BB##"}},
      {{'O', true, kAcme, 999}, {'A', true, kSpotCo, 0}, {'B', true, kSpotCo, 0}}},
     4, {}, "d0", "OA", 8 * 1 + 8 * 1000, true},
    // (e) excluded domains (reserved for queued requests ahead) are never chosen.
    {"the best domain is excluded",
     {{{"d0", "AAAA"}, {"d1", "BCDE"}},
      {{'A', true, kSpotCo, 0}, {'B', false, kSpotCo, 0}, {'C', false, kSpotCo, 0},
       {'D', false, kSpotCo, 0}, {'E', false, kSpotCo, 0}}},
     4, {"d0"}, "d1", "BCDE", 4 * 4 * 1000, false},
    {"every reachable domain is excluded",
     {{{"d0", "AAAA"}, {"d1", "BBBB"}, {"d2", "C###"}},
      {{'A', true, kSpotCo, 0}, {'B', true, kSpotCo, 0}, {'C', false, kSpotCo, 0}}},
     4, {"d1", "d0"}, "", "", 0, false},
};

class PreemptionChoiceTest : public ::testing::TestWithParam<ChoiceCase> {};

TEST_P(PreemptionChoiceTest, EvictsTheFewestWholeSpotGangs) {
  const ChoiceCase& c = GetParam();
  TestFleet fleet = Build(c.layout);
  ASSERT_FALSE(fleet.PlaceBatch(c.k).ok()) << "free capacity alone must not hold the request";
  absl::StatusOr<PreemptionPlan> plan = PreemptFor(fleet, c.k, c.excluded);
  if (c.domain.empty()) {
    EXPECT_STATUS(plan, absl::StatusCode::kResourceExhausted,
                  absl::StrCat("no NVLink domain can hold ", c.k,
                               " gb200-tray machines even with its spot instances preempted"));
    return;
  }
  ASSERT_OK(plan);
  EXPECT_EQ(fleet.alloc().DomainAt(plan->domain).id, c.domain);
  std::vector<std::string> victims = VictimIds(fleet, *plan);
  EXPECT_EQ(GangsOf(victims), c.gangs);
  EXPECT_THAT(victims, ElementsAreArray(InstancesOf(c.layout, c.gangs)));
  EXPECT_EQ(plan->gangs, static_cast<int32_t>(c.gangs.size()));
  EXPECT_EQ(plan->gpus, 4 * static_cast<int64_t>(victims.size()));
  EXPECT_EQ(plan->gpu_seconds, c.gpu_seconds);
  EXPECT_EQ(plan->own_tenant, c.own_tenant);

  // Once the victims are gone, the request fits in the plan's domain (pinned there).
  MarkAndRelease(fleet, *plan);
  PlanConstraints pinned;
  pinned.pinned_domain = plan->domain;
  absl::StatusOr<Placement> placed = fleet.alloc().PlanBatch({kAcme, kGb200, c.k}, pinned);
  ASSERT_OK(placed);
  for (const PlacedInstance& p : placed->instances) EXPECT_EQ(p.domain, plan->domain);
  fleet.ApplyPlan(*placed, "preemptor");
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

INSTANTIATE_TEST_SUITE_P(Layouts, PreemptionChoiceTest, ::testing::ValuesIn(kChoiceCases),
                         [](const ::testing::TestParamInfo<ChoiceCase>& info) {
                           std::string name;
                           for (const char* p = info.param.name; *p != '\0'; ++p) {
                             if (std::isalnum(*p)) name += *p;
                           }
                           return name;
                         });

TEST(PreemptionPolicyTest, TheCrossDomainVictimLeavesItsOtherDomainToo) {
  const Layout layout{{{"d0", "XX.."}, {"d1", "XXYY"}},
                      {{'X', true, kSpotCo, 900}, {'Y', true, kSpotCo, 999}}};
  TestFleet fleet = Build(layout);
  const TypeIndex t = fleet.alloc().TypeIndexOf(kGb200);
  const DomainIndex d1 = fleet.alloc().DomainIndexOf("d1");
  absl::StatusOr<PreemptionPlan> plan = PreemptFor(fleet, 4);
  ASSERT_OK(plan);
  EXPECT_THAT(VictimIds(fleet, *plan), ElementsAre("X@d0-0", "X@d0-1", "X@d1-0", "X@d1-1"));
  EXPECT_EQ(fleet.alloc().DomainReclaimableMachines(t, d1), 4);
  fleet.alloc().MarkPreempted(*plan);
  ASSERT_OK(fleet.alloc().CheckInvariants());
  // X's machines in d1 may no longer be counted on; Y's still may.
  EXPECT_EQ(fleet.alloc().DomainReclaimableMachines(t, d1), 2);
  EXPECT_EQ(fleet.alloc().ReclaimableMachines(t), 2);
  EXPECT_TRUE(fleet.Find("X@d1-1")->preempted);
  EXPECT_FALSE(fleet.Find("Y@d1-2")->preempted);
}

// ---------------------------------------------------------------- Who may not preempt

TEST(PreemptionPolicyTest, SpotRequestsAndCrossDomainBatchesNeverPreempt) {
  TestFleet fleet = Build({{{"d0", "AAAA"}}, {{'A', true, kSpotCo, 0}}});
  Allocator& alloc = fleet.alloc();
  BatchRequest spot_batch{kAcme, kGb200, 4};
  spot_batch.spot = true;
  EXPECT_STATUS(alloc.PlanPreemption(spot_batch, PlanConstraints{}, kNow),
                absl::StatusCode::kFailedPrecondition, "a spot request never preempts");
  SingleRequest spot_single{kAcme, kGb200, 0};
  spot_single.spot = true;
  EXPECT_STATUS(alloc.PlanPreemption(spot_single, PlanConstraints{}, kNow),
                absl::StatusCode::kFailedPrecondition, "a spot request never preempts");
  spot_single.gpu_count = 2;
  EXPECT_STATUS(alloc.PlanPreemption(spot_single, PlanConstraints{}, kNow),
                absl::StatusCode::kFailedPrecondition, "a spot request never preempts");
  BatchRequest cross{kAcme, kGb200, 4, /*topology_optimized=*/false};
  EXPECT_STATUS(alloc.PlanPreemption(cross, PlanConstraints{}, kNow),
                absl::StatusCode::kFailedPrecondition,
                "a cross-domain batch (topology_optimized=false) does not preempt");
  cross.spot = true;
  EXPECT_EQ(alloc.PlanPreemption(cross, PlanConstraints{}, kNow).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The same requests on demand and strict do preempt.
  EXPECT_OK(alloc.PlanPreemption(BatchRequest{kAcme, kGb200, 4}, PlanConstraints{}, kNow));
  EXPECT_OK(alloc.PlanPreemption(SingleRequest{kAcme, kGb200, 0}, PlanConstraints{}, kNow));
}

TEST(PreemptionPolicyTest, MalformedUnknownAndOverQuotaRequests) {
  TestFleet fleet = Build({{{"d0", "AAAA"}}, {{'A', true, kSpotCo, 0}}});
  Allocator& alloc = fleet.alloc();
  EXPECT_STATUS(alloc.PlanPreemption(BatchRequest{"nobody", kGb200, 1}, PlanConstraints{}, kNow),
                absl::StatusCode::kNotFound, "tenant \"nobody\" is not known");
  EXPECT_STATUS(alloc.PlanPreemption(BatchRequest{kAcme, "b300", 1}, PlanConstraints{}, kNow),
                absl::StatusCode::kNotFound, "instance type \"b300\" is not known");
  EXPECT_STATUS(alloc.PlanPreemption(BatchRequest{kAcme, kGb200, 5}, PlanConstraints{}, kNow),
                absl::StatusCode::kInvalidArgument, "can never fit in one NVLink domain");
  EXPECT_STATUS(alloc.PlanPreemption(BatchRequest{kAcme, kGb200, 0}, PlanConstraints{}, kNow),
                absl::StatusCode::kInvalidArgument, "count must be at least 1");
  EXPECT_STATUS(alloc.PlanPreemption(SingleRequest{kAcme, kGb200, 5}, PlanConstraints{}, kNow),
                absl::StatusCode::kInvalidArgument, "gpu_count must be 0..4 (got 5)");
  EXPECT_STATUS(
      alloc.PlanPreemption(SingleRequest{kAcme, kGb200, 0, "s9"}, PlanConstraints{}, kNow),
      absl::StatusCode::kNotFound, "site \"s9\" is not known");
  // A type with no machines can never be served: infeasible (INVALID_ARGUMENT, as PlanSingle
  // says), not "no capacity now" (RESOURCE_EXHAUSTED, which means: retry later).
  EXPECT_STATUS(
      alloc.PlanPreemption(BatchRequest{kAcme, testing::kH100, 1}, PlanConstraints{}, kNow),
      absl::StatusCode::kInvalidArgument, "can never fit in one NVLink domain");
  EXPECT_STATUS(alloc.PlanSingle(SingleRequest{kAcme, testing::kH100, 0}),
                absl::StatusCode::kInvalidArgument,
                "infeasible: instance type h100-8x has no machines");
  for (int gpus : {0, 2}) {
    EXPECT_STATUS(
        alloc.PlanPreemption(SingleRequest{kAcme, testing::kH100, gpus}, PlanConstraints{}, kNow),
        absl::StatusCode::kInvalidArgument, "infeasible: instance type h100-8x has no machines");
  }
  PlanConstraints committed;
  committed.committed_quota_gpus = 100000 * 4;
  absl::StatusOr<PreemptionPlan> over =
      alloc.PlanPreemption(BatchRequest{kAcme, kGb200, 4}, committed, kNow);
  EXPECT_STATUS(over, absl::StatusCode::kResourceExhausted, "quota exceeded");
  EXPECT_TRUE(GetQuotaViolation(over.status()).has_value());
}

// ---------------------------------------------------------------- MarkPreempted

TEST(PreemptionPolicyTest, MarkedVictimsAreNoLongerReclaimableAndRollbackUndoesIt) {
  // A is younger than B, so A goes first.
  const Layout layout{{{"d0", "AAAA"}, {"d1", "BBBB"}, {"d2", "C###"}},
                      {{'A', true, kSpotCo, 900}, {'B', true, kSpotCo, 0},
                       {'C', false, kSpotCo, 0}}};
  TestFleet fleet = Build(layout);
  Allocator& alloc = fleet.alloc();
  const TypeIndex t = alloc.TypeIndexOf(kGb200);
  const std::string before = Snapshot(alloc);
  const std::string spot_before = SpotState(fleet);
  EXPECT_EQ(alloc.ReclaimableMachines(t), 9);

  absl::StatusOr<PreemptionPlan> first = PreemptFor(fleet, 4);
  ASSERT_OK(first);
  EXPECT_EQ(GangsOf(VictimIds(fleet, *first)), "A");
  const JournalMark mark = alloc.Mark();
  alloc.MarkPreempted(*first);
  ASSERT_OK(alloc.CheckInvariants());
  EXPECT_EQ(alloc.ReclaimableMachines(t), 5);
  EXPECT_EQ(alloc.DomainReclaimableMachines(t, alloc.DomainIndexOf("d0")), 0);
  for (const std::string& id : InstancesOf(layout, "A")) {
    ASSERT_TRUE(fleet.Find(id).has_value()) << id;  // still holding its machine
    EXPECT_TRUE(fleet.Find(id)->preempted) << id;
  }
  EXPECT_FALSE(fleet.Find("B@d1-0")->preempted);

  // A second preemption does not count on A's machines.
  absl::StatusOr<PreemptionPlan> second = PreemptFor(fleet, 4);
  ASSERT_OK(second);
  EXPECT_EQ(fleet.alloc().DomainAt(second->domain).id, "d1");
  EXPECT_EQ(GangsOf(VictimIds(fleet, *second)), "B");
  EXPECT_STATUS(PreemptFor(fleet, 4, {"d1"}), absl::StatusCode::kResourceExhausted,
                "(5 machines of the type are held by spot instances that could be preempted)");
  EXPECT_STATUS(PreemptFor(fleet, 1, {"d1", "d2"}), absl::StatusCode::kResourceExhausted,
                "even with its spot instances preempted");

  // Mark, release, and a placement in their place: rolled back, all of it.
  ASSERT_OK(fleet.Release(VictimIds(fleet, *first)));
  ASSERT_OK(fleet.PlaceBatch(4));
  ASSERT_OK(alloc.CheckInvariants());
  alloc.RollbackTo(mark);
  ASSERT_OK(alloc.CheckInvariants());
  EXPECT_EQ(Snapshot(alloc), before);
  EXPECT_EQ(SpotState(fleet), spot_before);
  absl::StatusOr<PreemptionPlan> again = PreemptFor(fleet, 4);
  ASSERT_OK(again);
  EXPECT_EQ(again->domain, first->domain);
  EXPECT_THAT(again->victims, ElementsAreArray(first->victims));  // the same handles, valid again
  EXPECT_EQ(again->gpu_seconds, first->gpu_seconds);

  // MarkPreempted alone, rolled back.
  const JournalMark mark2 = alloc.Mark();
  alloc.MarkPreempted(*again);
  alloc.RollbackTo(mark2);
  ASSERT_OK(alloc.CheckInvariants());
  EXPECT_EQ(SpotState(fleet), spot_before);
}

TEST(PreemptionPolicyTest, RestoringAPreemptedSpotInstanceGivesTheMarkedState) {
  const Layout live{{{"d0", "AAAA"}, {"d1", "BBBB"}, {"d2", "C###"}},
                    {{'A', true, kSpotCo, 900}, {'B', true, kSpotCo, 0},
                     {'C', false, kSpotCo, 0}}};
  TestFleet marked = Build(live);
  absl::StatusOr<PreemptionPlan> plan = PreemptFor(marked, 4);
  ASSERT_OK(plan);
  marked.alloc().MarkPreempted(*plan);
  ASSERT_OK(marked.alloc().CheckInvariants());

  // The same fleet read back from the store after a restart: A restored as preempted.
  Layout stored = live;
  stored.gangs[0].preempted = true;
  TestFleet restored = Build(stored);
  EXPECT_EQ(SpotState(restored), SpotState(marked));
  EXPECT_EQ(Snapshot(restored.alloc()), Snapshot(marked.alloc()));
  absl::StatusOr<PreemptionPlan> next_marked = PreemptFor(marked, 4);
  absl::StatusOr<PreemptionPlan> next_restored = PreemptFor(restored, 4);
  ASSERT_OK(next_marked);
  ASSERT_OK(next_restored);
  EXPECT_EQ(VictimIds(restored, *next_restored), VictimIds(marked, *next_marked));
  EXPECT_EQ(GangsOf(VictimIds(restored, *next_restored)), "B");

  // "preempted" only means something for spot instances.
  TestFleet fleet({{"e", "s1", 2}});
  InstanceClaim claim{kAcme, kGb200, "e-0"};
  claim.preempted = true;
  ASSERT_OK(fleet.Restore("on-demand", claim));
  EXPECT_FALSE(fleet.Find("on-demand")->preempted);
  EXPECT_OK(fleet.alloc().CheckInvariants());
}

// ---------------------------------------------------------------- pinned_domain

TEST(PinnedDomainTest, StrictBatchesAndSinglesGoOnlyToThePinnedDomain) {
  // d1 is the best fit for small requests; d0 has a partly held machine (the GPU-granular
  // rule's first choice).
  TestFleet fleet = Build({{{"d0", "...."}, {"d1", "..##"}, {"d2", "......"}}, {}});
  Allocator& alloc = fleet.alloc();
  fleet.HoldGpus("d0-3", 2);
  auto pinned_to = [&](const std::string& domain) {
    PlanConstraints constraints;
    constraints.pinned_domain = alloc.DomainIndexOf(domain);
    return constraints;
  };
  auto machines = [&](const absl::StatusOr<Placement>& plan) {
    std::vector<std::string> out;
    if (!plan.ok()) return std::vector<std::string>{plan.status().ToString()};
    for (const PlacedInstance& p : plan->instances) {
      out.push_back(alloc.MachineAt(p.machine).id);
    }
    return out;
  };
  // Unpinned, for contrast.
  EXPECT_THAT(machines(alloc.PlanBatch({kAcme, kGb200, 2})), ElementsAre("d1-0", "d1-1"));
  EXPECT_THAT(machines(alloc.PlanSingle({kAcme, kGb200, 2})), ElementsAre("d0-3"));

  EXPECT_THAT(machines(alloc.PlanBatch({kAcme, kGb200, 2}, pinned_to("d2"))),
              ElementsAre("d2-0", "d2-1"));
  EXPECT_THAT(machines(alloc.PlanBatch({kAcme, kGb200, 3}, pinned_to("d0"))),
              ElementsAre("d0-0", "d0-1", "d0-2"));
  EXPECT_THAT(machines(alloc.PlanSingle({kAcme, kGb200, 0}, pinned_to("d2"))),
              ElementsAre("d2-0"));
  EXPECT_THAT(machines(alloc.PlanSingle({kAcme, kGb200, 2}, pinned_to("d2"))),
              ElementsAre("d2-0"));
  // Pinned wins over partition affinity: that is where the victims' machines are.
  ASSERT_OK(fleet.PlaceBatch(1, true, SpreadPolicy::kFill, {"p1"}));  // p1 now lives in d1
  EXPECT_THAT(machines(alloc.PlanBatch({kAcme, kGb200, 2, true, SpreadPolicy::kFill, {"p1"}},
                                       pinned_to("d2"))),
              ElementsAre("d2-0", "d2-1"));

  // No room in the pinned domain: RESOURCE_EXHAUSTED, though d0 and d2 have room.
  absl::StatusOr<Placement> too_big = alloc.PlanBatch({kAcme, kGb200, 2}, pinned_to("d1"));
  EXPECT_STATUS(too_big, absl::StatusCode::kResourceExhausted, "which this request waits for");
  ASSERT_TRUE(GetCapacityShortfall(too_big.status()).has_value());
  EXPECT_EQ(GetCapacityShortfall(too_big.status())->largest_domain_free, 1);
  EXPECT_OK(alloc.PlanBatch({kAcme, kGb200, 1}, pinned_to("d1")));
  ASSERT_OK(fleet.PlaceSingle(0));  // d1's last free machine
  EXPECT_STATUS(alloc.PlanSingle({kAcme, kGb200, 0}, pinned_to("d1")),
                absl::StatusCode::kResourceExhausted, "which this request waits for");
  EXPECT_STATUS(alloc.PlanSingle({kAcme, kGb200, 1}, pinned_to("d1")),
                absl::StatusCode::kResourceExhausted, "which this request waits for");
  EXPECT_OK(alloc.PlanSingle({kAcme, kGb200, 1}));

  // Cross-domain batches ignore it (they never preempt): FILL takes d0's 3 free first.
  absl::StatusOr<Placement> cross =
      alloc.PlanBatch({kAcme, kGb200, 4, false, SpreadPolicy::kFill}, pinned_to("d1"));
  EXPECT_THAT(machines(cross), ElementsAre("d0-0", "d0-1", "d0-2", "d2-0"));
  EXPECT_OK(alloc.CheckInvariants());
}

// ---------------------------------------------------------------- Singles

TEST(PreemptionPolicyTest, AGpuGranularSingleGetsAWholeSpotMachineFreed) {
  // No free GPU anywhere; the 2-GPU request frees the cheapest whole spot gang (B, one
  // machine, rather than A's four), never the GPU-granular spot instances in d2.
  const Layout layout{{{"d0", "AAAA"}, {"d1", "B###"}, {"d2", "**"}},
                      {{'A', true, kSpotCo, 900}, {'B', false, kSpotCo, 800}}};
  TestFleet fleet = Build(layout);
  Allocator& alloc = fleet.alloc();
  SingleRequest request{kAcme, kGb200, 2};
  EXPECT_STATUS(alloc.PlanSingle(request), absl::StatusCode::kResourceExhausted,
                "no READY gb200-tray machine has 2 free GPUs");
  absl::StatusOr<PreemptionPlan> plan = alloc.PlanPreemption(request, PlanConstraints{}, kNow);
  ASSERT_OK(plan);
  EXPECT_EQ(alloc.DomainAt(plan->domain).id, "d1");
  EXPECT_THAT(VictimIds(fleet, *plan), ElementsAre("B@d1-0"));
  EXPECT_EQ(plan->gpus, 4);
  EXPECT_EQ(plan->gpu_seconds, 4 * 200);

  MarkAndRelease(fleet, *plan);
  PlanConstraints pinned;
  pinned.pinned_domain = plan->domain;
  absl::StatusOr<Placement> placed = alloc.PlanSingle(request, pinned);
  ASSERT_OK(placed);
  EXPECT_EQ(alloc.MachineAt(placed->instances[0].machine).id, "d1-0");
  EXPECT_EQ(placed->instances[0].gpu_count, 2);
  fleet.ApplyPlan(*placed, "");
  EXPECT_OK(alloc.CheckInvariants());

  // With d1 excluded, A's whole batch goes for the same 2 GPUs.
  TestFleet again = Build(layout);
  std::vector<DomainIndex> excluded = {again.alloc().DomainIndexOf("d1")};
  PlanConstraints constraints;
  constraints.excluded_domains = excluded;
  absl::StatusOr<PreemptionPlan> whole_gang =
      again.alloc().PlanPreemption(request, constraints, kNow);
  ASSERT_OK(whole_gang);
  EXPECT_THAT(VictimIds(again, *whole_gang), ElementsAreArray(InstancesOf(layout, "A")));
}

TEST(PreemptionPolicyTest, AWholeMachineSingleRespectsItsSite) {
  TestFleet fleet({});
  fleet.AddDomain("a", "s1");
  fleet.AddDomain("b", "s2");
  fleet.AddMachines({{"a-0", "a", 0}, {"b-0", "b", 0}});
  ASSERT_OK(fleet.alloc().UpsertTenant({kSpotCo, "spot-org", "spotco", {{kGb200, 10}}}));
  for (const char* machine : {"a-0", "b-0"}) {
    InstanceClaim claim{kSpotCo, kGb200, machine};
    claim.spot = true;
    ASSERT_OK(fleet.Restore(absl::StrCat("spot@", machine), claim));
  }
  absl::StatusOr<PreemptionPlan> plan = fleet.alloc().PlanPreemption(
      SingleRequest{kAcme, kGb200, 0, "s2"}, PlanConstraints{}, kNow);
  ASSERT_OK(plan);
  EXPECT_THAT(VictimIds(fleet, *plan), ElementsAre("spot@b-0"));
}

}  // namespace
}  // namespace nvlsched::allocator
