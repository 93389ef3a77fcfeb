// Test support: small fleets written out as literal tables, and status assertions.
//
//   TestFleet fleet({{"a", "s1", 4}, {"b", "s1", 6}});   // domains a (trays 0..3), b (0..5)
//   fleet.HoldWhole({"a-0", "b-3"});                     // occupy exact machines
//   EXPECT_THAT(fleet.PlaceBatch(3), IsOkAndHoldsMachines({"a-1", "a-2", "a-3"}));
//
// Machines are named "<domain>-<tray>"; every machine is instance type "gb200" (4 GPUs)
// unless a MachineRow says otherwise. Tenant "acme" has a large quota on every type.
// The allocator names instances by InstanceHandle; TestFleet gives each one a string id
// ("i-<n>", "hold-<machine>", ...) and maps between the two the way the daemon does,
// including an InstanceNamer, so messages name instances by those ids.
#ifndef NVLSCHED_TESTS_ALLOCATOR_TEST_FLEET_H_
#define NVLSCHED_TESTS_ALLOCATOR_TEST_FLEET_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "allocator/allocator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvlsched::allocator::testing {

inline constexpr char kGb200[] = "gb200";  // 4 GPUs per machine
inline constexpr char kH100[] = "h100";    // 8 GPUs per machine
inline constexpr char kAcme[] = "acme";

struct DomainRow {
  std::string id;
  std::string site;
  int machines;  // READY gb200 machines at trays 0..machines-1
};

struct MachineRow {
  std::string id;
  std::string domain;
  int tray;
  int gpus = 4;
  MachineState state = MachineState::kReady;
  std::string type = kGb200;
};

inline std::string MachineName(const std::string& domain, int tray) {
  return domain + "-" + std::to_string(tray);
}

// Machine names "<domain>-<tray>" for trays [from, to).
inline std::vector<std::string> Trays(const std::string& domain, int from, int to) {
  std::vector<std::string> out;
  for (int tray = from; tray < to; ++tray) out.push_back(MachineName(domain, tray));
  return out;
}

// A canonical text of everything observable, to compare states (e.g. around a rollback).
// Instances are listed by handle: equal snapshots mean equal handles too.
inline std::string Snapshot(const Allocator& alloc) {
  std::string out;
  alloc.ForEachInstanceType([&](const InstanceType& t) {
    out += "type " + t.id + " " + t.name + " " + std::to_string(t.gpus_per_machine) + "\n";
    absl::StatusOr<CapacityView> cap = alloc.Capacity(t.id);
    out += "  cap " + std::to_string(cap->total_machines) + " " + std::to_string(cap->free_machines) +
           " " + std::to_string(cap->free_gpus) + " " + std::to_string(cap->largest_strict_batch) +
           " " + std::to_string(cap->largest_domain) + " " + std::to_string(cap->fully_free_domains) +
           " " + std::to_string(cap->stranded_machines) + " " + std::to_string(cap->spare_machines) + " " +
           std::to_string(cap->available_machines) + "\n";
    (void)alloc.ForEachDomainCapacity(t.id, [&](const DomainCapacity& d) {
      out += "  domain " + d.domain_id + " " + std::to_string(d.total_machines) + " " +
             std::to_string(d.free_machines) + " " + std::to_string(d.free_gpus) + " " +
             std::to_string(d.spare_machines) + " " + std::to_string(d.available_machines) + "\n";
    });
  });
  out += "default spares=" + std::to_string(alloc.default_spare_machines()) + "\n";
  alloc.ForEachDomain([&](const Domain& d) {
    out += "domain " + d.id + " " + d.name + " " + d.site_id + " spares=" +
           (d.spare_machines.has_value() ? std::to_string(*d.spare_machines) : "default") + "\n";
  });
  alloc.ForEachMachine([&](const Machine& m) {
    out += "machine " + m.id + " " + m.domain_id + " " + std::to_string(m.tray_index) + " " +
           m.instance_type_id + " " + std::to_string(m.gpu_count) + " " +
           std::string(MachineStateName(m.state)) + " '" + m.state_reason + "'";
    for (const auto& [k, v] : m.labels) out += " " + k + "=" + v;
    out += "\n";
  });
  alloc.ForEachTenant([&](const Tenant& t) {
    out += "tenant " + t.id + " " + t.name;
    for (const auto& [type, max] : t.quota) {
      out += " " + type + ":" + std::to_string(max) + "/" +
             std::to_string(*alloc.QuotaUsageGpus(t.id, type));
    }
    out += "\n";
  });
  alloc.ForEachInstance([&](InstanceHandle h, const InstanceClaim& c) {
    out += "instance " + HandleName(h) + " " + c.tenant_id + " " + c.machine_id + " " +
           std::to_string(c.gpu_count) + (c.whole_machine ? " whole" : " gpus") + " batch=" +
           c.batch_id + (c.topology_optimized ? " strict" : " cross");
    for (const std::string& p : c.nvlink_partition_ids) out += " p=" + p;
    out += "\n";
  });
  return out;
}

class TestFleet {
 public:
  explicit TestFleet(const std::vector<DomainRow>& domains, int64_t quota_machines = 100000) {
    // The namer shares names_ rather than capturing `this`, so a TestFleet can be moved.
    alloc_.SetInstanceNamer([names = names_](InstanceHandle h) { return names->IdOf(h); });
    Check(alloc_.UpsertInstanceType({kGb200, "gb200-tray", "GB200", 4, 189000, 4000000, "nvlink5"}));
    Check(alloc_.UpsertInstanceType({kH100, "h100-8x", "H100", 8, 80000, 20000000, "nvlink4"}));
    Check(alloc_.UpsertTenant({kAcme, "acme-org", "acme", {{kGb200, quota_machines}, {kH100, quota_machines}}}));
    for (const DomainRow& row : domains) {
      AddDomain(row.id, row.site);
      for (int tray = 0; tray < row.machines; ++tray) {
        AddMachines({{MachineName(row.id, tray), row.id, tray}});
      }
    }
  }

  Allocator& alloc() { return alloc_; }

  void AddDomain(const std::string& id, const std::string& site) {
    Check(alloc_.UpsertDomain({id, "rack " + id, site}));
  }

  void AddMachines(const std::vector<MachineRow>& rows) {
    for (const MachineRow& row : rows) {
      Machine m;
      m.id = row.id;
      m.domain_id = row.domain;
      m.tray_index = row.tray;
      m.instance_type_id = row.type;
      m.gpu_count = row.gpus;
      m.state = row.state;
      Check(alloc_.UpsertMachine(m));
    }
  }

  // Occupies exactly these machines with whole-machine instances "hold-<machine>".
  void HoldWhole(const std::vector<std::string>& machine_ids) {
    for (const std::string& id : machine_ids) {
      const Machine* m = alloc_.FindMachine(id);
      ASSERT_NE(m, nullptr) << id;
      InstanceClaim claim;
      claim.tenant_id = kAcme;
      claim.instance_type_id = m->instance_type_id;
      claim.machine_id = id;
      claim.whole_machine = true;
      Check(Restore("hold-" + id, claim));
    }
  }

  // Holds `gpus` GPUs of a machine with a GPU-granular instance; returns its id.
  std::string HoldGpus(const std::string& machine_id, int gpus) {
    const Machine* m = alloc_.FindMachine(machine_id);
    EXPECT_NE(m, nullptr) << machine_id;
    InstanceClaim claim;
    claim.tenant_id = kAcme;
    claim.instance_type_id = m->instance_type_id;
    claim.machine_id = machine_id;
    claim.gpu_count = gpus;
    claim.whole_machine = false;
    std::string id = "gpus-" + machine_id + "-" + std::to_string(next_id_++);
    Check(Restore(id, claim));
    return id;
  }

  // RestoreInstance under the id `id`; the status (the handle is remembered).
  absl::Status Restore(const std::string& id, const InstanceClaim& claim) {
    absl::StatusOr<InstanceHandle> handle = alloc_.RestoreInstance(claim);
    if (handle.ok()) Remember(id, *handle);
    return handle.status();
  }

  // Plans and, on success, applies; returns the machine ids in placement order.
  absl::StatusOr<std::vector<std::string>> PlaceBatch(
      int count, bool strict = true, SpreadPolicy policy = SpreadPolicy::kFill,
      std::vector<std::string> partitions = {}, const std::string& type = kGb200) {
    BatchRequest request{kAcme, type, count, strict, policy, std::move(partitions)};
    absl::StatusOr<Placement> plan = alloc_.PlanBatch(request);
    if (!plan.ok()) return plan.status();
    return ApplyPlan(*plan, "batch-" + std::to_string(next_id_));
  }

  // Plans and applies a single; returns the machine id.
  absl::StatusOr<std::string> PlaceSingle(int gpus, const std::string& site = "",
                                          std::vector<std::string> partitions = {},
                                          const std::string& type = kGb200) {
    SingleRequest request{kAcme, type, gpus, site, std::move(partitions)};
    absl::StatusOr<Placement> plan = alloc_.PlanSingle(request);
    if (!plan.ok()) return plan.status();
    return ApplyPlan(*plan, "").front();
  }

  // Applies the plan and names its instances "i-<n>"; returns the machine ids.
  std::vector<std::string> ApplyPlan(const Placement& plan, const std::string& batch_id) {
    std::vector<InstanceHandle> handles(plan.size());
    alloc_.Apply(plan, batch_id, absl::MakeSpan(handles));
    last_instances_.clear();
    std::vector<std::string> machines;
    for (size_t i = 0; i < plan.size(); ++i) {
      last_instances_.push_back("i-" + std::to_string(next_id_++));
      Remember(last_instances_.back(), handles[i]);
      machines.push_back(alloc_.MachineAt(plan.instances[i].machine).id);
    }
    return machines;
  }

  // Instance ids given to the last Apply, in placement order.
  const std::vector<std::string>& last_instances() const { return last_instances_; }

  // The handle an id was last given; a never-valid handle for an unknown id.
  InstanceHandle HandleOf(const std::string& id) const {
    auto it = names_->handles.find(id);
    return it == names_->handles.end() ? InstanceHandle{} : it->second;
  }
  std::vector<InstanceHandle> HandlesOf(const std::vector<std::string>& ids) const {
    std::vector<InstanceHandle> out;
    for (const std::string& id : ids) out.push_back(HandleOf(id));
    return out;
  }
  // The id of a handle this fleet handed out (stale ones too); "" for others.
  std::string IdOf(InstanceHandle handle) const { return names_->IdOf(handle); }
  std::optional<InstanceClaim> Find(const std::string& id) const {
    return alloc_.FindInstance(HandleOf(id));
  }

  absl::Status Release(const std::vector<std::string>& instance_ids, bool health_issue = false) {
    absl::StatusOr<ReleasePlan> plan = alloc_.PlanRelease(HandlesOf(instance_ids), health_issue);
    if (!plan.ok()) return plan.status();
    alloc_.Apply(*plan);
    return absl::OkStatus();
  }

  int FreeIn(const std::string& domain, const std::string& type = kGb200) {
    absl::StatusOr<DomainCapacity> cap = alloc_.GetDomainCapacity(domain, type);
    EXPECT_TRUE(cap.ok()) << cap.status();
    return cap.ok() ? cap->available_machines : -1;
  }

 private:
  static void Check(const absl::Status& status) { ASSERT_TRUE(status.ok()) << status; }
  // Ids and handles both ways, kept after release (so stale handles are still named) and
  // never rolled back.
  struct Names {
    std::map<std::string, InstanceHandle> handles;
    std::map<InstanceHandle, std::string> ids;
    std::string IdOf(InstanceHandle handle) const {
      auto it = ids.find(handle);
      return it == ids.end() ? "" : it->second;
    }
  };
  void Remember(const std::string& id, InstanceHandle handle) {
    names_->handles[id] = handle;
    names_->ids[handle] = id;
  }

  std::shared_ptr<Names> names_ = std::make_shared<Names>();
  Allocator alloc_;
  std::vector<std::string> last_instances_;
  int next_id_ = 0;
};

inline absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// Asserts the code AND a substring of the message.
#define EXPECT_STATUS(expr, expected_code, substring)                                   \
  do {                                                                                  \
    absl::Status _status = ::nvlsched::allocator::testing::StatusOf(expr);              \
    EXPECT_EQ(_status.code(), expected_code) << _status;                                \
    EXPECT_THAT(std::string(_status.message()), ::testing::HasSubstr(substring)) << _status; \
  } while (0)

#define ASSERT_OK(expr)                                                     \
  do {                                                                      \
    absl::Status _status = ::nvlsched::allocator::testing::StatusOf(expr);  \
    ASSERT_TRUE(_status.ok()) << _status;                                   \
  } while (0)

#define EXPECT_OK(expr)                                                     \
  do {                                                                      \
    absl::Status _status = ::nvlsched::allocator::testing::StatusOf(expr);  \
    EXPECT_TRUE(_status.ok()) << _status;                                   \
  } while (0)

}  // namespace nvlsched::allocator::testing

#endif  // NVLSCHED_TESTS_ALLOCATOR_TEST_FLEET_H_
