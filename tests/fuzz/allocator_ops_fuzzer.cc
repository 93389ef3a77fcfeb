// libFuzzer target: sequences of allocator operations (allocator/allocator.h) on a small
// literal fleet, run side by side with the randomized test's brute-force ReferenceModel
// (tests/allocator/reference_model.h).
// Input: a stream of ops, each one byte that picks the op and then the op's arguments
// (FuzzedDataProvider): strict batch; cross-domain batch with FILL / MIN_DOMAINS / SPREAD;
// single (whole machine or 1..9 GPUs, with a site); release (with duplicates, stale handles,
// health issue); set machine state; add machine; remove machine; mark; rollback to a mark;
// clear the journal. After EVERY op:
//   - CheckInvariants() passes (allocator/invariants.h: invariants 1, 2, 4, quota usage);
//   - the allocator decided exactly what the reference decided (code, machines, GPUs);
//   - the observable state (machines, instances) equals the reference's.
// Any difference aborts.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "allocator/allocator.h"
#include "allocator/errors.h"
#include "tests/allocator/reference_model.h"
#include "tests/fuzz/fuzz_check.h"

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
    // id    site  gb200 h100
    {"d0", "s1", 6, 0}, {"d1", "s1", 4, 0}, {"d2", "s2", 3, 0}, {"h0", "s1", 0, 3},
    {"mix", "s2", 2, 1},
};
const char* const kTenants[] = {"acme", "acme", "small", "none", "ghost"};
const char* const kTypes[] = {"gb200", "gb200", "h100", "tpu"};
const char* const kSites[] = {"", "s1", "s2", "s9"};
const char* const kPartitions[] = {"p0", "p1", "p2"};
const MachineState kStates[] = {MachineState::kReady, MachineState::kMaintenance,
                                MachineState::kError};
const SpreadPolicy kPolicies[] = {SpreadPolicy::kFill, SpreadPolicy::kMinDomains,
                                  SpreadPolicy::kSpread};

template <typename T, size_t N>
const T& Pick(FuzzedDataProvider& in, T const (&items)[N]) {
  return items[in.ConsumeIntegralInRange<size_t>(0, N - 1)];
}

void MustOk(const absl::Status& status) { FUZZ_CHECK(status.ok(), status.ToString()); }

class World {
 public:
  World() {
    MustOk(alloc_.UpsertInstanceType({"gb200", "gb200-tray", "GB200", 4}));
    MustOk(alloc_.UpsertInstanceType({"h100", "h100-8x", "H100", 8}));
    ref_.AddType("gb200", 4);
    ref_.AddType("h100", 8);
    for (const auto& [id, quota] : std::map<std::string, std::map<std::string, int64_t>>{
             {"acme", {{"gb200", 1000}, {"h100", 1000}}},
             {"small", {{"gb200", 3}, {"h100", 1}}},
             {"none", {}}}) {
      MustOk(alloc_.UpsertTenant({id, id, id, quota}));
      ref_.AddTenant(id, quota);
    }
    for (const DomainSpec& d : kFleet) {
      MustOk(alloc_.UpsertDomain({d.id, d.id, d.site}));
      ref_.AddDomain(d.id, d.site);
      for (int tray = 0; tray < d.gb200 + d.h100; ++tray) {
        const bool gb200 = tray < d.gb200;
        const int gpus = gb200 ? (tray == d.gb200 - 1 && d.gb200 % 2 == 1 ? 3 : 4) : 8;
        AddMachine(absl::StrCat(d.id, "-", tray), d.id, tray, gb200 ? "gb200" : "h100", gpus);
      }
    }
    alloc_.ClearJournal();
    Check("set-up");
  }

  void Step(FuzzedDataProvider& in) {
    const int op = in.ConsumeIntegralInRange<int>(0, 12);
    switch (op) {
      case 0:
      case 1:
        StrictBatch(in);
        break;
      case 2:
        CrossBatch(in);
        break;
      case 3:
      case 4:
        Single(in);
        break;
      case 5:
      case 6:
        Release(in);
        break;
      case 7:
        SetState(in);
        break;
      case 8:
        AddRandomMachine(in);
        break;
      case 9:
        RemoveRandomMachine(in);
        break;
      case 10:
        if (in.ConsumeBool()) {
          marks_.push_back({alloc_.Mark(), ref_});
        } else {
          alloc_.ClearJournal();
          marks_.clear();
        }
        break;
      case 11:
        Rollback(in);
        break;
      default:
        SetSpares(in);
        break;
    }
    Check(absl::StrCat("op ", op));
  }

 private:
  struct Saved {
    JournalMark mark;
    ReferenceModel ref;
  };

  void Check(const std::string& after) {
    const absl::Status invariants = alloc_.CheckInvariants();
    FUZZ_CHECK(invariants.ok(), absl::StrCat("after ", after, ": ", invariants.ToString()));
    const std::string mine = Describe();
    const std::string want = ref_.Describe();
    FUZZ_CHECK(mine == want, absl::StrCat("after ", after, " the state diverged:\nallocator:\n",
                                          mine, "reference:\n", want));
  }

  void AddMachine(const std::string& id, const std::string& domain, int tray,
                  const std::string& type, int gpus) {
    MustOk(alloc_.UpsertMachine({id, domain, tray, type, gpus}));
    ref_.AddMachine(id, domain, tray, type, gpus);
    machine_ids_.push_back(id);
  }

  std::vector<std::string> Partitions(FuzzedDataProvider& in) {
    if (!in.ConsumeBool()) return {};
    return {Pick(in, kPartitions)};
  }

  // Plans on both sides; on success checks the choice is identical and applies it.
  void Compare(const absl::StatusOr<Placement>& plan, const ReferenceModel::Decision& want,
               const std::string& batch_id, const std::string& what) {
    FUZZ_CHECK(plan.status().code() == want.code,
               absl::StrCat(what, ": allocator ", plan.status().ToString(), ", reference ",
                            absl::StatusCodeToString(want.code)));
    if (!plan.ok()) {
      if (want.shortfall.has_value()) {
        FUZZ_CHECK(GetCapacityShortfall(plan.status()) == want.shortfall,
                   absl::StrCat(what, ": shortfall differs: ", plan.status().ToString()));
      }
      if (want.quota.has_value()) {
        FUZZ_CHECK(GetQuotaViolation(plan.status()) == want.quota,
                   absl::StrCat(what, ": quota violation differs: ", plan.status().ToString()));
      }
      return;
    }
    std::vector<std::string> machines;
    std::vector<int> gpus;
    for (const PlacedInstance& p : plan->instances) {
      machines.push_back(alloc_.MachineAt(p.machine).id);
      gpus.push_back(p.gpu_count);
    }
    FUZZ_CHECK(machines == want.machines && gpus == want.gpus,
               absl::StrCat(what, ": allocator chose ", absl::StrJoin(machines, ","),
                            ", reference ", absl::StrJoin(want.machines, ",")));
    std::vector<std::string> ids;
    for (size_t i = 0; i < machines.size(); ++i) ids.push_back(absl::StrCat("i", next_id_++));
    std::vector<InstanceHandle> handles(ids.size());
    alloc_.Apply(*plan, batch_id, absl::MakeSpan(handles));
    for (size_t i = 0; i < ids.size(); ++i) {
      handles_[ids[i]] = handles[i];
      FUZZ_CHECK(ids_.emplace(handles[i], ids[i]).second, "a handle was handed out twice");
    }
    ref_.Apply(want, ids, batch_id);
  }

  void StrictBatch(FuzzedDataProvider& in) {
    BatchRequest r{Pick(in, kTenants), Pick(in, kTypes), in.ConsumeIntegralInRange<int>(-1, 20),
                   true, SpreadPolicy::kFill, Partitions(in)};
    const std::string batch = absl::StrCat("b", next_id_++);
    Compare(alloc_.PlanBatch(r), ref_.PlanBatch(r), batch,
            absl::StrCat("strict batch of ", r.count, " ", r.instance_type_id, " for ", r.tenant_id));
  }

  void CrossBatch(FuzzedDataProvider& in) {
    BatchRequest r{Pick(in, kTenants), Pick(in, kTypes), in.ConsumeIntegralInRange<int>(1, 20),
                   false, Pick(in, kPolicies), Partitions(in)};
    const std::string batch = absl::StrCat("b", next_id_++);
    Compare(alloc_.PlanBatch(r), ref_.PlanBatch(r), batch,
            absl::StrCat("cross batch of ", r.count, " ", SpreadPolicyName(r.spread_policy).data()));
  }

  void Single(FuzzedDataProvider& in) {
    SingleRequest r{Pick(in, kTenants), Pick(in, kTypes), in.ConsumeIntegralInRange<int>(0, 9),
                    Pick(in, kSites), Partitions(in)};
    Compare(alloc_.PlanSingle(r), ref_.PlanSingle(r), "",
            absl::StrCat("single of ", r.gpu_count, " GPUs ", r.instance_type_id, " site '",
                         r.site_id, "'"));
  }

  void Release(FuzzedDataProvider& in) {
    std::vector<std::string> ids;
    const std::vector<std::string> live = ref_.LiveInstanceIds();
    for (int n = in.ConsumeIntegralInRange<int>(1, 6); n > 0; --n) {
      const int pick = in.ConsumeIntegralInRange<int>(0, 15);
      if (pick < 12 && !live.empty()) {
        ids.push_back(live[pick % live.size()]);  // may repeat: INVALID_ARGUMENT
      } else if (pick < 15 && !handles_.empty()) {
        // Any id ever handed out: live, released or rolled back.
        auto it = handles_.begin();
        std::advance(it, in.ConsumeIntegralInRange<size_t>(0, handles_.size() - 1));
        ids.push_back(it->first);
      } else {
        ids.push_back("i-unknown");
      }
    }
    const bool health = in.ConsumeBool();
    std::vector<InstanceHandle> handles;
    for (const std::string& id : ids) {
      auto it = handles_.find(id);
      handles.push_back(it == handles_.end() ? InstanceHandle{} : it->second);
    }
    absl::StatusOr<ReleasePlan> plan = alloc_.PlanRelease(handles, health);
    const absl::StatusCode want = ref_.Release(ids, health);
    FUZZ_CHECK(plan.status().code() == want,
               absl::StrCat("release ", absl::StrJoin(ids, ","), ": allocator ",
                            plan.status().ToString(), ", reference ",
                            absl::StatusCodeToString(want)));
    if (plan.ok()) alloc_.Apply(*plan);
  }

  std::string AnyMachine(FuzzedDataProvider& in) {
    if (in.ConsumeIntegralInRange<int>(0, 15) == 0) return "no-such-machine";
    return machine_ids_[in.ConsumeIntegralInRange<size_t>(0, machine_ids_.size() - 1)];
  }

  void SetState(FuzzedDataProvider& in) {
    const std::string id = AnyMachine(in);
    const MachineState state = Pick(in, kStates);
    const absl::Status status = alloc_.SetMachineState(id, state, "fuzz");
    const absl::StatusCode want = ref_.SetState(id, state);
    FUZZ_CHECK(status.code() == want, absl::StrCat("set state of ", id, ": allocator ",
                                                   status.ToString(), ", reference ",
                                                   absl::StatusCodeToString(want)));
  }

  // A domain's own spare trays (0..2); the reference is copied into marks, so it rolls back.
  void SetSpares(FuzzedDataProvider& in) {
    const DomainSpec& d = Pick(in, kFleet);
    Domain spec = *alloc_.FindDomain(d.id);
    spec.spare_machines = in.ConsumeIntegralInRange<int32_t>(0, 2);
    MustOk(alloc_.UpsertDomain(spec));
    ref_.SetSpares(d.id, *spec.spare_machines);
  }

  void AddRandomMachine(FuzzedDataProvider& in) {
    const DomainSpec& d = Pick(in, kFleet);
    const int tray = in.ConsumeIntegralInRange<int>(0, 40);
    if (ref_.TraysOf(d.id).count(tray) > 0) return;
    const bool gb200 = d.gb200 > 0 && (d.h100 == 0 || in.ConsumeBool());
    const int gpus = gb200 ? (in.ConsumeBool() ? 3 : 4) : 8;
    AddMachine(absl::StrCat(d.id, "-x", next_id_++), d.id, tray, gb200 ? "gb200" : "h100", gpus);
  }

  void RemoveRandomMachine(FuzzedDataProvider& in) {
    const std::string id = AnyMachine(in);
    const absl::Status status = alloc_.RemoveMachine(id);
    const absl::StatusCode want = ref_.Remove(id);
    FUZZ_CHECK(status.code() == want, absl::StrCat("remove ", id, ": allocator ",
                                                   status.ToString(), ", reference ",
                                                   absl::StatusCodeToString(want)));
  }

  void Rollback(FuzzedDataProvider& in) {
    if (marks_.empty()) return;
    const size_t i = in.ConsumeIntegralInRange<size_t>(0, marks_.size() - 1);
    alloc_.RollbackTo(marks_[i].mark);
    ref_ = marks_[i].ref;
    marks_.resize(i + 1);
  }

  // The allocator's state in ReferenceModel::Describe's format.
  std::string Describe() const {
    std::vector<std::string> lines;
    // Domains, in ReferenceModel::Describe's format (their state is compared too).
    for (const DomainSpec& d : kFleet) {
      lines.push_back(absl::StrCat(
          "domain ", d.id, " ",
          DomainStateName(alloc_.DomainAt(alloc_.DomainIndexOf(d.id)).state).data()));
    }
    alloc_.ForEachMachine([&](const Machine& m) {
      lines.push_back(absl::StrCat("machine ", m.id, " ", m.domain_id, " ", m.tray_index, " ",
                                   m.instance_type_id, " ", m.gpu_count, " ",
                                   MachineStateName(m.state).data()));
    });
    alloc_.ForEachInstance([&](InstanceHandle h, const InstanceClaim& c) {
      auto id = ids_.find(h);
      std::string line = absl::StrCat(
          "instance ", id == ids_.end() ? "<unknown handle>" : id->second, " ", c.tenant_id, " ",
          c.machine_id, " ", c.gpu_count, c.whole_machine ? " whole" : " gpus", " batch=",
          c.batch_id, c.topology_optimized ? " strict" : " cross", c.spot ? " spot" : "",
          c.preempted ? " preempted" : "", " started=", c.started_micros);
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

  Allocator alloc_;
  ReferenceModel ref_;
  std::vector<Saved> marks_;
  std::vector<std::string> machine_ids_;           // every id ever added (some removed since)
  std::map<std::string, InstanceHandle> handles_;  // every instance id ever applied
  std::map<InstanceHandle, std::string> ids_;
  int next_id_ = 0;
};

}  // namespace
}  // namespace nvlsched::allocator

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  nvlsched::allocator::World world;
  // Bounded, so one input cannot run for long.
  for (int step = 0; step < 256 && in.remaining_bytes() > 0; ++step) world.Step(in);
  return 0;
}
