// Tests store/rows.h: equality looks at every field (the round-trip tests rely on it), and
// ChangeSet's size/empty/clear.
#include "store/rows.h"

#include <functional>
#include <vector>

#include "gtest/gtest.h"
#include "tests/store/store_test_util.h"

namespace nvlsched::store {
namespace {

using ::nvlsched::store::store_testing::MakeInstance;
using ::nvlsched::store::store_testing::MakeMachine;
using ::nvlsched::store::store_testing::MakeTenant;

template <typename Row>
void ExpectEveryFieldMatters(const Row& base, const std::vector<std::function<void(Row&)>>& edits) {
  EXPECT_EQ(base, base);
  for (size_t i = 0; i < edits.size(); ++i) {
    Row changed = base;
    edits[i](changed);
    EXPECT_NE(base, changed) << "edit " << i << " was not noticed by operator==";
  }
}

TEST(RowsTest, InstanceEqualityComparesEveryField) {
  ExpectEveryFieldMatters<InstanceRow>(
      MakeInstance("i", "n", "m"),
      {[](InstanceRow& r) { r.id += "x"; }, [](InstanceRow& r) { r.name += "x"; },
       [](InstanceRow& r) { r.tenant_id += "x"; },
       [](InstanceRow& r) { r.instance_type_id += "x"; },
       [](InstanceRow& r) { r.machine_id += "x"; }, [](InstanceRow& r) { r.gpu_count++; },
       [](InstanceRow& r) { r.whole_machine = !r.whole_machine; },
       [](InstanceRow& r) { r.batch_id += "x"; }, [](InstanceRow& r) { r.strict = !r.strict; },
       [](InstanceRow& r) { r.nvlink_partition_ids.pop_back(); },
       [](InstanceRow& r) { r.status += "x"; }, [](InstanceRow& r) { r.created_unix_micros++; },
       [](InstanceRow& r) { r.updated_unix_micros++; },
       [](InstanceRow& r) { r.details.push_back('\0'); }});
}

TEST(RowsTest, MachineTenantAndSmallRowEqualityComparesEveryField) {
  ExpectEveryFieldMatters<MachineRow>(
      MakeMachine(0, 1),
      {[](MachineRow& r) { r.id += "x"; }, [](MachineRow& r) { r.domain_id += "x"; },
       [](MachineRow& r) { r.tray_index++; }, [](MachineRow& r) { r.instance_type_id += "x"; },
       [](MachineRow& r) { r.gpu_count++; }, [](MachineRow& r) { r.state = kMachineError; },
       [](MachineRow& r) { r.state_reason += "x"; }, [](MachineRow& r) { r.labels["k"] = "v"; }});
  ExpectEveryFieldMatters<TenantRow>(
      MakeTenant(0),
      {[](TenantRow& r) { r.id += "x"; }, [](TenantRow& r) { r.org += "x"; },
       [](TenantRow& r) { r.name += "x"; }, [](TenantRow& r) { r.quotas["it-0"]++; },
       [](TenantRow& r) { r.priority++; },
       [](TenantRow& r) { r.site_quotas[{"it-0", "site-a"}]++; }});
  ExpectEveryFieldMatters<InstanceTypeRow>(
      InstanceTypeRow{"a", "b", "c", 1, 2, 3, "d"},
      {[](InstanceTypeRow& r) { r.id += "x"; }, [](InstanceTypeRow& r) { r.name += "x"; },
       [](InstanceTypeRow& r) { r.gpu_model += "x"; },
       [](InstanceTypeRow& r) { r.gpus_per_machine++; },
       [](InstanceTypeRow& r) { r.gpu_memory_mib++; },
       [](InstanceTypeRow& r) { r.price_per_hour_micros++; },
       [](InstanceTypeRow& r) { r.interconnect += "x"; }});
  ExpectEveryFieldMatters<DomainRow>(
      DomainRow{"a", "b", "c"},
      {[](DomainRow& r) { r.id += "x"; }, [](DomainRow& r) { r.name += "x"; },
       [](DomainRow& r) { r.site_id += "x"; }});
  ExpectEveryFieldMatters<IdempotencyRow>(IdempotencyRow{"t", "r", "f", "p", 1},
                                          {[](IdempotencyRow& r) { r.tenant_id += "x"; },
                                           [](IdempotencyRow& r) { r.request_id += "x"; },
                                           [](IdempotencyRow& r) { r.request_fingerprint += "x"; },
                                           [](IdempotencyRow& r) { r.response += "x"; },
                                           [](IdempotencyRow& r) { r.created_unix_micros++; }});
  ExpectEveryFieldMatters<MetaRow>(
      MetaRow{"k", "v"}, {[](MetaRow& r) { r.key += "x"; }, [](MetaRow& r) { r.value += "x"; }});
}

TEST(RowsTest, ChangeSetCountsTopLevelRowsAndClears) {
  ChangeSet changes;
  EXPECT_TRUE(changes.empty());
  EXPECT_EQ(changes.size(), 0u);
  changes.upsert_instance_types.emplace_back();
  changes.upsert_domains.emplace_back();
  changes.upsert_machines.push_back(MakeMachine(0, 0));  // its labels are not counted
  changes.delete_machine_ids.emplace_back("m");
  changes.upsert_tenants.emplace_back();
  changes.upsert_instances.emplace_back();
  changes.delete_instance_ids.emplace_back("i");
  changes.put_idempotency.emplace_back();
  changes.put_meta.emplace_back();
  EXPECT_FALSE(changes.empty());
  EXPECT_EQ(changes.size(), 9u);
  changes.clear();
  EXPECT_TRUE(changes.empty());
}

}  // namespace
}  // namespace nvlsched::store
