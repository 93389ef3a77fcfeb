#include "store/rows.h"

#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace nvlsched::store {

std::string JoinPartitionIds(const std::vector<std::string>& ids) {
  return absl::StrJoin(ids, "\n");
}

std::vector<std::string> SplitPartitionIds(const std::string& joined) {
  if (joined.empty()) return {};
  return absl::StrSplit(joined, '\n');
}

bool operator==(const InstanceTypeRow& a, const InstanceTypeRow& b) {
  return std::tie(a.id, a.name, a.gpu_model, a.gpus_per_machine, a.gpu_memory_mib,
                  a.price_per_hour_micros, a.interconnect, a.spot_price_per_hour_micros) ==
         std::tie(b.id, b.name, b.gpu_model, b.gpus_per_machine, b.gpu_memory_mib,
                  b.price_per_hour_micros, b.interconnect, b.spot_price_per_hour_micros);
}

bool operator==(const DomainRow& a, const DomainRow& b) {
  return std::tie(a.id, a.name, a.site_id, a.state, a.state_reason, a.spare_machines) ==
         std::tie(b.id, b.name, b.site_id, b.state, b.state_reason, b.spare_machines);
}

bool operator==(const MachineRow& a, const MachineRow& b) {
  return std::tie(a.id, a.domain_id, a.tray_index, a.instance_type_id, a.gpu_count, a.state,
                  a.state_reason, a.labels, a.cleaning, a.wipe_pending) ==
         std::tie(b.id, b.domain_id, b.tray_index, b.instance_type_id, b.gpu_count, b.state,
                  b.state_reason, b.labels, b.cleaning, b.wipe_pending);
}

bool operator==(const TenantRow& a, const TenantRow& b) {
  return std::tie(a.id, a.org, a.name, a.quotas, a.priority, a.site_quotas) ==
         std::tie(b.id, b.org, b.name, b.quotas, b.priority, b.site_quotas);
}

bool operator==(const InstanceRow& a, const InstanceRow& b) {
  return std::tie(a.id, a.name, a.tenant_id, a.instance_type_id, a.machine_id, a.gpu_count,
                  a.whole_machine, a.batch_id, a.strict, a.nvlink_partition_ids, a.status,
                  a.created_unix_micros, a.updated_unix_micros, a.details) ==
         std::tie(b.id, b.name, b.tenant_id, b.instance_type_id, b.machine_id, b.gpu_count,
                  b.whole_machine, b.batch_id, b.strict, b.nvlink_partition_ids, b.status,
                  b.created_unix_micros, b.updated_unix_micros, b.details);
}

bool operator==(const IdempotencyRow& a, const IdempotencyRow& b) {
  return std::tie(a.tenant_id, a.request_id, a.request_fingerprint, a.response,
                  a.created_unix_micros) == std::tie(b.tenant_id, b.request_id,
                                                     b.request_fingerprint, b.response,
                                                     b.created_unix_micros);
}

bool operator==(const MetaRow& a, const MetaRow& b) {
  return std::tie(a.key, a.value) == std::tie(b.key, b.value);
}

bool operator==(const EventRow& a, const EventRow& b) {
  return a.sequence == b.sequence && a.time_unix_micros == b.time_unix_micros &&
         a.type == b.type && a.org == b.org && a.tenant_id == b.tenant_id &&
         a.payload == b.payload;
}

bool ChangeSet::empty() const { return size() == 0; }

size_t ChangeSet::size() const {
  return upsert_instance_types.size() + upsert_domains.size() + upsert_machines.size() +
         delete_machine_ids.size() + upsert_tenants.size() + upsert_instances.size() +
         delete_instance_ids.size() + put_idempotency.size() + put_meta.size() +
         append_events.size() + (prune_events_through > 0 ? 1 : 0);
}

void ChangeSet::clear() {
  upsert_instance_types.clear();
  upsert_domains.clear();
  upsert_machines.clear();
  delete_machine_ids.clear();
  upsert_tenants.clear();
  upsert_instances.clear();
  delete_instance_ids.clear();
  put_idempotency.clear();
  append_events.clear();
  prune_events_through = 0;
  put_meta.clear();
}

namespace {

// A ChangeSet states a net effect: an id cannot be both upserted and deleted.
template <typename Row>
absl::Status CheckNotBothUpsertedAndDeleted(const std::vector<Row>& upserts,
                                            const std::vector<std::string>& deletes,
                                            absl::string_view kind) {
  if (upserts.empty() || deletes.empty()) return absl::OkStatus();
  absl::flat_hash_set<absl::string_view> deleted(deletes.begin(), deletes.end());
  for (const Row& row : upserts) {
    if (deleted.contains(row.id)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ChangeSet both upserts and deletes ", kind, " \"", row.id,
          "\"; a ChangeSet must state the net effect of its group (keep only the final one)"));
    }
  }
  return absl::OkStatus();
}

// Partition ids are stored joined by '\n' (schema v7): an empty id or one with a newline
// would not read back as written.
absl::Status CheckPartitionIds(const std::vector<InstanceRow>& upserts) {
  for (const InstanceRow& row : upserts) {
    for (const std::string& id : row.nvlink_partition_ids) {
      if (id.empty() || id.find('\n') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            "instance \"", row.id, "\" names an NVLink partition id that is empty or contains a "
            "newline; the store keeps partition ids joined by newlines"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckChangeSet(const ChangeSet& changes) {
  absl::Status valid = CheckNotBothUpsertedAndDeleted(changes.upsert_instances,
                                                      changes.delete_instance_ids, "instance");
  if (valid.ok()) {
    valid = CheckNotBothUpsertedAndDeleted(changes.upsert_machines, changes.delete_machine_ids,
                                           "machine");
  }
  if (valid.ok()) valid = CheckPartitionIds(changes.upsert_instances);
  return valid;
}

ChangeSet ChangeSetOf(LoadedState state, std::vector<EventRow> events) {
  ChangeSet c;
  c.upsert_instance_types = std::move(state.instance_types);
  c.upsert_domains = std::move(state.domains);
  c.upsert_machines = std::move(state.machines);
  c.upsert_tenants = std::move(state.tenants);
  c.upsert_instances = std::move(state.instances);
  c.put_idempotency = std::move(state.idempotency);
  c.put_meta = std::move(state.meta);
  c.append_events = std::move(events);
  return c;
}

}  // namespace nvlsched::store
