// Plain row structs: the store's vocabulary, independent of the allocator and of protobuf.
//
// The daemon converts between these rows and its own types; the store never interprets
// `InstanceRow::details` (the daemon's serialized instance) or `MetaRow::value`.
// Ids are UUID strings; money and sizes are integers. An empty optional-looking string field
// (InstanceRow::machine_id, InstanceRow::batch_id) means "none" and is stored as SQL NULL.
//
// Thread-safety: plain values; no synchronisation.
#ifndef NVLSCHED_STORE_ROWS_H_
#define NVLSCHED_STORE_ROWS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace nvlsched::store {

struct InstanceTypeRow {
  std::string id;
  std::string name;  // unique across instance types
  std::string gpu_model;
  int64_t gpus_per_machine = 0;  // > 0
  int64_t gpu_memory_mib = 0;
  int64_t price_per_hour_micros = 0;
  std::string interconnect;
  int64_t spot_price_per_hour_micros = 0;  // 0: not sold as spot (schema v4)
};

struct DomainRow {
  std::string id;
  std::string name;
  std::string site_id;
  int state = 0;  // 0 READY, 1 DEGRADED, 2 MAINTENANCE (schema v6)
  std::string state_reason;
  // Spare trays held back from new placements; nullopt (NULL): the fleet default, stored as
  // the meta key kDefaultSpareMachinesKey (schema v10).
  std::optional<int32_t> spare_machines;
};

// Machine states, as stored (the daemon maps them to its enum).
enum MachineState : int { kMachineReady = 0, kMachineMaintenance = 1, kMachineError = 2 };

struct MachineRow {
  std::string id;
  std::string domain_id;  // must name a stored domain
  int64_t tray_index = 0;
  std::string instance_type_id;  // must name a stored instance type
  int64_t gpu_count = 0;         // > 0
  int state = kMachineReady;     // one of MachineState
  std::string state_reason;
  std::map<std::string, std::string> labels;
  // Waiting to be wiped after its last instance left (schema v5). Stored with state
  // kMachineMaintenance, so that a reader that predates it never hands the machine out.
  bool cleaning = false;
  // Waits for a wipe (schema v8): set with cleaning, and also for a machine drained
  // (MAINTENANCE, ERROR) when its last instance left; cleared by CompleteCleaning.
  bool wipe_pending = false;
};

struct TenantRow {
  std::string id;
  std::string org;
  std::string name;
  // instance_type_id -> max machines; every key must name a stored instance type.
  std::map<std::string, int64_t> quotas;
  int64_t priority = 0;  // -1000..1000 (a CHECK in the schema)
  // (instance_type_id, site_id) -> max machines in that site (site_id non-empty); stored in
  // tenant_quotas beside the fleet-wide entries (site_id '').
  std::map<std::pair<std::string, std::string>, int64_t> site_quotas;
};

struct InstanceRow {
  std::string id;
  std::string name;  // unique per tenant
  std::string tenant_id;
  std::string instance_type_id;
  std::string machine_id;  // "" = no machine
  int64_t gpu_count = 0;   // > 0
  bool whole_machine = false;
  std::string batch_id;  // "" = not part of a batch
  bool strict = false;   // batch placed topology-optimized (one NVLink domain)
  // Order and repeats are preserved. Stored joined by '\n' (schema v7), so no id may be empty
  // or contain a newline (Store::Commit refuses that with INVALID_ARGUMENT).
  std::vector<std::string> nvlink_partition_ids;
  std::string status;
  int64_t created_unix_micros = 0;
  int64_t updated_unix_micros = 0;
  std::string details;  // opaque bytes: the daemon's full serialized instance
};

// Key: (tenant_id, request_id).
struct IdempotencyRow {
  std::string tenant_id;  // must name a stored tenant
  std::string request_id;
  std::string request_fingerprint;  // bytes
  std::string response;             // bytes
  int64_t created_unix_micros = 0;
};

// The meta key holding the fleet's default spare_machines, as decimal text (absent: 0).
inline constexpr char kDefaultSpareMachinesKey[] = "default_spare_machines";

// Small key/value facts about the database itself (e.g. "fleet_seeded").
struct MetaRow {
  std::string key;
  std::string value;  // bytes
};

// InstanceRow::nvlink_partition_ids as stored: joined by '\n' ("" for none), and back.
std::string JoinPartitionIds(const std::vector<std::string>& ids);
std::vector<std::string> SplitPartitionIds(const std::string& joined);

bool operator==(const InstanceTypeRow& a, const InstanceTypeRow& b);
bool operator==(const DomainRow& a, const DomainRow& b);
bool operator==(const MachineRow& a, const MachineRow& b);
bool operator==(const TenantRow& a, const TenantRow& b);
bool operator==(const InstanceRow& a, const InstanceRow& b);
bool operator==(const IdempotencyRow& a, const IdempotencyRow& b);
bool operator==(const MetaRow& a, const MetaRow& b);
inline bool operator!=(const InstanceTypeRow& a, const InstanceTypeRow& b) { return !(a == b); }
inline bool operator!=(const DomainRow& a, const DomainRow& b) { return !(a == b); }
inline bool operator!=(const MachineRow& a, const MachineRow& b) { return !(a == b); }
inline bool operator!=(const TenantRow& a, const TenantRow& b) { return !(a == b); }
inline bool operator!=(const InstanceRow& a, const InstanceRow& b) { return !(a == b); }
inline bool operator!=(const IdempotencyRow& a, const IdempotencyRow& b) { return !(a == b); }
inline bool operator!=(const MetaRow& a, const MetaRow& b) { return !(a == b); }

// One committed event (daemon EventService): its sequence is the table's key; `payload` is the
// whole event as the daemon serialized it. The store keeps the columns it filters on.
struct EventRow {
  uint64_t sequence = 0;
  int64_t time_unix_micros = 0;
  int32_t type = 0;
  std::string org;
  std::string tenant_id;
  std::string payload;
};
bool operator==(const EventRow& a, const EventRow& b);

// Everything one Store::Commit writes, in one transaction.
//
// The ChangeSet states the NET effect of a group: an id appears at most once per kind, and never
// both in an upsert and a delete of the same kind (Commit refuses that with INVALID_ARGUMENT).
// Upserts insert a row or replace all its fields (child rows — labels, quotas, partition ids —
// are replaced as a whole); a row keeps its original insertion position for LoadAll.
//
// Commit applies the parts in an order that satisfies the foreign keys:
//   instance types, domains, tenants (+quotas), instance DELETES, machines, instance upserts,
//   machine deletes, idempotency records, meta.
// Deleting instances before upserting lets one group free a name and reuse it. A machine
// can only be deleted once no stored instance refers to it. Deleting an id that is not stored
// is a no-op, so a group that creates and then deletes an instance may send just the delete.
struct ChangeSet {
  std::vector<InstanceTypeRow> upsert_instance_types;
  std::vector<DomainRow> upsert_domains;
  std::vector<MachineRow> upsert_machines;
  std::vector<std::string> delete_machine_ids;
  std::vector<TenantRow> upsert_tenants;
  std::vector<InstanceRow> upsert_instances;
  std::vector<std::string> delete_instance_ids;
  std::vector<IdempotencyRow> put_idempotency;
  std::vector<MetaRow> put_meta;
  // Appended in order; sequences strictly above every stored one (else UNAVAILABLE: the
  // primary key refuses a duplicate).
  std::vector<EventRow> append_events;
  // Deletes every event with sequence <= this (0: none): retention.
  uint64_t prune_events_through = 0;

  bool empty() const;
  // Number of top-level rows named (child rows not counted).
  size_t size() const;
  void clear();
};

// What LoadAll fills of each instance row.
enum class InstanceColumns : uint8_t {
  kAll,
  // id, tenant_id, machine_id, gpu_count, whole_machine and details: what the daemon's
  // start-up reads (details, the serialized record, holds the rest). The other columns are
  // left at their defaults: about 0.1 s less of a 500k-instance start-up on SQLite.
  kStartUp,
};

// The whole database, each kind in insertion order (SQLite rowid order; an update keeps the
// row's position). Deterministic for a given database.
struct LoadedState {
  int schema_version = 0;
  std::vector<InstanceTypeRow> instance_types;
  std::vector<DomainRow> domains;
  std::vector<MachineRow> machines;
  std::vector<TenantRow> tenants;
  std::vector<InstanceRow> instances;
  std::vector<IdempotencyRow> idempotency;
  std::vector<MetaRow> meta;
  // Events are not loaded (there may be millions): only the retained range, 0 and 0 when none.
  uint64_t oldest_event = 0;
  uint64_t newest_event = 0;
};

// What every Store::Commit refuses before it writes anything (INVALID_ARGUMENT, naming the
// row): an id both upserted and deleted in one ChangeSet, and NVLink partition ids that would
// not read back (empty, or holding the '\n' they are joined by).
absl::Status CheckChangeSet(const ChangeSet& changes);

// Every row of `state` as one ChangeSet (upserts in load order, `events` appended): what
// writes a whole database into an empty store.
ChangeSet ChangeSetOf(LoadedState state, std::vector<EventRow> events);

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_ROWS_H_
