// Seeded randomized test: thousands of mixed operations — strict batches, FILL /
// MIN_DOMAINS / SPREAD batches, singles of 1..8 GPUs and whole machines, releases with and
// without a health issue, drains and undrains, machine adds and removes, rollbacks to
// journal marks — run against the Allocator and against ReferenceModel (an independent
// brute-force statement of the rules). After every step: CheckInvariants() passes, the
// allocator chose exactly what the reference chose (or failed with the same code and
// payload), and the whole observable state is equal. The reference names instances by
// string id; the test maps each id to the InstanceHandle Apply gave it, so state equality
// also proves that exactly the reference's live ids have valid handles, across releases
// and rollbacks, and a handle of a dead instance is checked to be stale after every step.
#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "allocator/allocator.h"
#include "tests/allocator/reference_model.h"
#include "tests/allocator/test_fleet.h"

namespace nvlsched::allocator {
namespace {

using ::nvlsched::allocator::testing::ReferenceModel;

// The fleet, as a table.
struct DomainSpec {
  const char* id;
  const char* site;
  int gb200;  // 4-GPU machines at trays 0..gb200-1 (the last one has 3 GPUs when odd)
  int h100;   // 8-GPU machines at the trays after them
};
constexpr DomainSpec kFleet[] = {
    // id     site  gb200 h100
    {"d0", "s1", 18, 0}, {"d1", "s1", 18, 0}, {"d2", "s1", 12, 0}, {"d3", "s2", 9, 0},
    {"d4", "s2", 6, 0},  {"d5", "s2", 4, 0},  {"d6", "s1", 3, 0},  {"h0", "s1", 0, 8},
    {"mix", "s2", 3, 2},
};
const char* const kTenants[] = {"acme", "acme", "acme", "acme", "small", "none"};
const char* const kPartitions[] = {"p0", "p1", "p2", "p3", "p4"};

class RandomizedWorld {
 public:
  explicit RandomizedWorld(uint32_t seed) : rng_(seed) {
    Add(alloc_.UpsertInstanceType({"gb200", "gb200-tray", "GB200", 4}));
    Add(alloc_.UpsertInstanceType({"h100", "h100-8x", "H100", 8}));
    ref_.AddType("gb200", 4);
    ref_.AddType("h100", 8);
    for (const auto& [id, quota] : std::map<std::string, std::map<std::string, int64_t>>{
             {"acme", {{"gb200", 1000}, {"h100", 1000}}},
             {"small", {{"gb200", 5}, {"h100", 1}}},
             {"none", {}}}) {
      Add(alloc_.UpsertTenant({id, id, id, quota}));
      ref_.AddTenant(id, quota);
    }
    for (const DomainSpec& d : kFleet) {
      Add(alloc_.UpsertDomain({d.id, d.id, d.site}));
      ref_.AddDomain(d.id, d.site);
      for (int tray = 0; tray < d.gb200 + d.h100; ++tray) {
        bool gb200 = tray < d.gb200;
        int gpus = gb200 ? (tray == d.gb200 - 1 && d.gb200 % 2 == 1 ? 3 : 4) : 8;
        AddMachine(absl::StrCat(d.id, "-", tray), d.id, tray, gb200 ? "gb200" : "h100", gpus);
      }
    }
    alloc_.ClearJournal();
  }

  void Step(int step) {
    int dice = static_cast<int>(rng_() % 100);
    if (dice < 22) {
      StrictBatch();
    } else if (dice < 34) {
      CrossBatch();
    } else if (dice < 54) {
      Single();
    } else if (dice < 82) {
      Release();
    } else if (dice < 87) {
      SetState();
    } else if (dice < 90) {
      AddRandomMachine();
    } else if (dice < 93) {
      RemoveRandomMachine();
    } else if (dice < 97) {
      marks_.push_back({alloc_.Mark(), ref_});
    } else if (dice < 99) {
      Rollback();
    } else {
      alloc_.ClearJournal();
      marks_.clear();
    }
    ASSERT_OK(alloc_.CheckInvariants());
    ASSERT_EQ(Describe(), ref_.Describe()) << "state diverged at step " << step;
    if (std::string dead = RandomDeadId(); !dead.empty()) {
      ASSERT_FALSE(alloc_.FindInstance(handles_.at(dead)).has_value())
          << dead << " is not live, yet its handle still finds an instance";
    }
  }

  int placements() const { return placements_; }
  const std::map<std::string, int>& outcomes() const { return outcomes_; }
  int rollbacks() const { return rollbacks_; }

 private:
  struct Saved {
    JournalMark mark;
    ReferenceModel ref;
  };

  static void Add(const absl::Status& status) { ASSERT_TRUE(status.ok()) << status; }

  int Uniform(int lo, int hi) { return lo + static_cast<int>(rng_() % (hi - lo + 1)); }
  bool Chance(int percent) { return Uniform(1, 100) <= percent; }
  template <typename T, size_t N>
  T Pick(T const (&items)[N]) {
    return items[rng_() % N];
  }

  void AddMachine(const std::string& id, const std::string& domain, int tray,
                  const std::string& type, int gpus) {
    Add(alloc_.UpsertMachine({id, domain, tray, type, gpus}));
    ref_.AddMachine(id, domain, tray, type, gpus);
    machine_ids_.push_back(id);
  }

  std::string RandomType() { return Chance(80) ? "gb200" : "h100"; }
  std::vector<std::string> RandomPartitions(int percent) {
    if (!Chance(percent)) return {};
    return {Pick(kPartitions)};
  }

  std::vector<std::string> NewIds(size_t n) {
    std::vector<std::string> ids;
    for (size_t i = 0; i < n; ++i) ids.push_back(absl::StrCat("i", next_id_++));
    return ids;
  }

  // An id whose instance the reference does not hold (released, or rolled back); "" if none
  // among a few tries.
  std::string RandomDeadId() {
    if (all_ids_.empty()) return "";
    std::vector<std::string> live = ref_.LiveInstanceIds();
    for (int attempt = 0; attempt < 4; ++attempt) {
      const std::string& id = all_ids_[rng_() % all_ids_.size()];
      if (std::find(live.begin(), live.end(), id) == live.end()) return id;
    }
    return "";
  }

  // Plans on both sides; on success checks the choice is identical and applies it.
  void Compare(const absl::StatusOr<Placement>& plan, const ReferenceModel::Decision& want,
               const std::string& batch_id, const std::string& what) {
    SCOPED_TRACE(what);
    ASSERT_EQ(plan.status().code(), want.code) << plan.status();
    ++outcomes_[want.quota.has_value() ? "QUOTA" : absl::StatusCodeToString(plan.status().code())];
    if (!plan.ok()) {
      if (want.shortfall.has_value()) {
        EXPECT_EQ(GetCapacityShortfall(plan.status()), want.shortfall);
      }
      if (want.quota.has_value()) {
        EXPECT_EQ(GetQuotaViolation(plan.status()), want.quota);
      }
      return;
    }
    std::vector<std::string> machines;
    std::vector<int> gpus;
    for (const PlacedInstance& p : plan->instances) {
      machines.push_back(alloc_.MachineAt(p.machine).id);
      gpus.push_back(p.gpu_count);
    }
    ASSERT_EQ(machines, want.machines);
    ASSERT_EQ(gpus, want.gpus);
    std::vector<std::string> ids = NewIds(machines.size());
    std::vector<InstanceHandle> handles(ids.size());
    alloc_.Apply(*plan, batch_id, absl::MakeSpan(handles));
    for (size_t i = 0; i < ids.size(); ++i) {
      // Ids are never reused, so these maps only grow: nothing to roll back.
      handles_[ids[i]] = handles[i];
      ASSERT_TRUE(ids_.emplace(handles[i], ids[i]).second) << "handle handed out twice";
      all_ids_.push_back(ids[i]);
    }
    ref_.Apply(want, ids, batch_id);
    ++placements_;
  }

  void StrictBatch() {
    BatchRequest r{Pick(kTenants), RandomType(), Chance(3) ? Uniform(19, 20) : Uniform(1, 10),
                   true, SpreadPolicy::kFill, RandomPartitions(30)};
    std::string batch = absl::StrCat("b", next_id_++);
    Compare(alloc_.PlanBatch(r), ref_.PlanBatch(r), batch,
            absl::StrCat("strict batch of ", r.count, " ", r.instance_type_id));
  }

  void CrossBatch() {
    const SpreadPolicy policies[] = {SpreadPolicy::kFill, SpreadPolicy::kMinDomains,
                                     SpreadPolicy::kSpread};
    BatchRequest r{Pick(kTenants), RandomType(), Uniform(1, 15), false, Pick(policies),
                   RandomPartitions(20)};
    std::string batch = absl::StrCat("b", next_id_++);
    Compare(alloc_.PlanBatch(r), ref_.PlanBatch(r), batch,
            absl::StrCat("cross batch of ", r.count, " ", SpreadPolicyName(r.spread_policy).data()));
  }

  void Single() {
    std::string type = RandomType();
    int max_gpus = type == "gb200" ? 4 : 8;
    const char* sites[] = {"", "", "", "s1", "s2", "s9"};
    SingleRequest r{Pick(kTenants), type, Chance(30) ? 0 : Uniform(1, max_gpus + (Chance(5) ? 1 : 0)),
                    Pick(sites), RandomPartitions(20)};
    Compare(alloc_.PlanSingle(r), ref_.PlanSingle(r), "",
            absl::StrCat("single of ", r.gpu_count, " GPUs ", type, " site '", r.site_id, "'"));
  }

  void Release() {
    std::vector<std::string> live = ref_.LiveInstanceIds();
    if (live.empty()) return;
    std::vector<std::string> ids;
    for (int n = Uniform(1, 6); n > 0; --n) {
      std::string id = live[rng_() % live.size()];
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    }
    if (Chance(5)) {
      // A stale handle (released or rolled back), or one never handed out.
      std::string dead = RandomDeadId();
      ids.push_back(dead.empty() ? "i-unknown" : dead);
    }
    if (Chance(5)) ids.push_back(ids.front());
    bool health = Chance(20);
    std::vector<InstanceHandle> handles;
    for (const std::string& id : ids) {
      auto it = handles_.find(id);
      handles.push_back(it == handles_.end() ? InstanceHandle{} : it->second);
    }
    absl::StatusOr<ReleasePlan> plan = alloc_.PlanRelease(handles, health);
    absl::StatusCode want = ref_.Release(ids, health);
    ASSERT_EQ(plan.status().code(), want) << plan.status();
    if (plan.ok()) alloc_.Apply(*plan);
  }

  void SetState() {
    const MachineState states[] = {MachineState::kReady, MachineState::kReady,
                                   MachineState::kMaintenance, MachineState::kError};
    std::string id = machine_ids_[rng_() % machine_ids_.size()];
    MachineState state = Pick(states);
    ASSERT_EQ(alloc_.SetMachineState(id, state, "random").code(), ref_.SetState(id, state));
  }

  void AddRandomMachine() {
    const DomainSpec& d = kFleet[rng_() % (sizeof(kFleet) / sizeof(kFleet[0]))];
    std::set<int> used = ref_.TraysOf(d.id);
    int tray = Uniform(0, 40);
    if (used.count(tray) > 0) return;
    std::string type = d.gb200 > 0 && (d.h100 == 0 || Chance(50)) ? "gb200" : "h100";
    int gpus = type == "gb200" ? (Chance(15) ? 3 : 4) : 8;
    AddMachine(absl::StrCat(d.id, "-x", next_id_++), d.id, tray, type, gpus);
  }

  void RemoveRandomMachine() {
    std::string id = machine_ids_[rng_() % machine_ids_.size()];
    ASSERT_EQ(alloc_.RemoveMachine(id).code(), ref_.Remove(id));
  }

  void Rollback() {
    if (marks_.empty()) return;
    size_t i = rng_() % marks_.size();
    alloc_.RollbackTo(marks_[i].mark);
    ref_ = marks_[i].ref;
    marks_.resize(i + 1);
    ++rollbacks_;
  }

  // The allocator's state in ReferenceModel::Describe's format.
  std::string Describe() const {
    std::vector<std::string> lines;
    alloc_.ForEachMachine([&](const Machine& m) {
      lines.push_back(absl::StrCat("machine ", m.id, " ", m.domain_id, " ", m.tray_index, " ",
                                   m.instance_type_id, " ", m.gpu_count, " ",
                                   MachineStateName(m.state).data()));
    });
    alloc_.ForEachInstance([&](InstanceHandle h, const InstanceClaim& c) {
      auto id = ids_.find(h);
      std::string line = absl::StrCat("instance ",
                                      id == ids_.end() ? "<unknown handle>" : id->second, " ",
                                      c.tenant_id, " ", c.machine_id, " ",
                                      c.gpu_count, c.whole_machine ? " whole" : " gpus", " batch=",
                                      c.batch_id, c.topology_optimized ? " strict" : " cross");
      std::vector<std::string> partitions = c.nvlink_partition_ids;
      std::sort(partitions.begin(), partitions.end());
      for (const std::string& p : partitions) line += " p=" + p;
      lines.push_back(line);
    });
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (const std::string& line : lines) out += line + "\n";
    return out;
  }

  std::mt19937 rng_;
  Allocator alloc_;
  ReferenceModel ref_;
  std::vector<Saved> marks_;
  std::vector<std::string> machine_ids_;  // every id ever added (some removed since)
  std::map<std::string, InstanceHandle> handles_;  // every instance id ever applied
  std::map<InstanceHandle, std::string> ids_;
  std::vector<std::string> all_ids_;
  int next_id_ = 0;
  int placements_ = 0;
  int rollbacks_ = 0;
  std::map<std::string, int> outcomes_;  // planning outcomes by status code
};

class AllocatorRandomizedTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(AllocatorRandomizedTest, AgreesWithTheReferenceModelAfterEveryStep) {
  constexpr int kSteps = 3000;
  RandomizedWorld world(GetParam());
  for (int step = 0; step < kSteps; ++step) {
    SCOPED_TRACE(absl::StrCat("seed ", GetParam(), " step ", step));
    world.Step(step);
    if (::testing::Test::HasFatalFailure()) return;
  }
  // The run must have exercised placements, every kind of refusal, and rollbacks.
  std::string summary;
  for (const auto& [code, n] : world.outcomes()) absl::StrAppend(&summary, code, "=", n, " ");
  std::printf("seed %u: %s rollbacks=%d\n", GetParam(), summary.c_str(), world.rollbacks());
  EXPECT_GT(world.placements(), kSteps / 10);
  EXPECT_GT(world.rollbacks(), 10);
  for (const char* code : {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED"}) {
    EXPECT_GT(world.outcomes().count(code), 0u) << code;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, AllocatorRandomizedTest, ::testing::Values(1u, 2u, 3u, 4u, 5u));

}  // namespace
}  // namespace nvlsched::allocator
