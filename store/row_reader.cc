#include "store/row_reader.h"

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "store/sqlite_status.h"

namespace nvlsched::store {
namespace {

// A child row whose parent is missing: foreign keys forbid it, so the file was edited or damaged.
class OrphanRowError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string Text(const SQLite::Column& column) {
  // NULL reads as "" (InstanceRow's "none").
  if (column.isNull()) return std::string();
  return std::string(static_cast<const char*>(column.getBlob()),
                     static_cast<size_t>(column.getBytes()));
}

size_t CountRows(SQLite::Database& db, const char* table) {
  return static_cast<size_t>(
      db.execAndGet(absl::StrCat("SELECT count(*) FROM ", table)).getInt64());
}

// Index from a parent's id to its position in `rows`. The keys view strings owned by `rows`,
// which must not grow while the index is in use.
template <typename Row>
absl::flat_hash_map<absl::string_view, size_t> IndexById(const std::vector<Row>& rows) {
  absl::flat_hash_map<absl::string_view, size_t> index;
  index.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) index.emplace(rows[i].id, i);
  return index;
}

template <typename Row>
Row& ParentOf(std::vector<Row>& rows, const absl::flat_hash_map<absl::string_view, size_t>& index,
              const SQLite::Column& parent_id, const char* child_table) {
  const absl::string_view id(static_cast<const char*>(parent_id.getBlob()),
                             static_cast<size_t>(parent_id.getBytes()));
  auto it = index.find(id);
  if (it == index.end()) {
    throw OrphanRowError(
        absl::StrCat(child_table, " has a row for \"", id, "\", which is not stored"));
  }
  return rows[it->second];
}

void ReadInstanceTypes(SQLite::Database& db, LoadedState& state) {
  state.instance_types.reserve(CountRows(db, "instance_types"));
  SQLite::Statement q(db, R"sql(
      SELECT id, name, gpu_model, gpus_per_machine, gpu_memory_mib, price_per_hour_micros,
             interconnect, spot_price_per_hour_micros
      FROM instance_types ORDER BY rowid)sql");
  while (q.executeStep()) {
    InstanceTypeRow& row = state.instance_types.emplace_back();
    row.id = Text(q.getColumn(0));
    row.name = Text(q.getColumn(1));
    row.gpu_model = Text(q.getColumn(2));
    row.gpus_per_machine = q.getColumn(3).getInt64();
    row.gpu_memory_mib = q.getColumn(4).getInt64();
    row.price_per_hour_micros = q.getColumn(5).getInt64();
    row.interconnect = Text(q.getColumn(6));
    row.spot_price_per_hour_micros = q.getColumn(7).getInt64();
  }
}

void ReadDomains(SQLite::Database& db, LoadedState& state) {
  state.domains.reserve(CountRows(db, "domains"));
  SQLite::Statement q(
      db, "SELECT id, name, site_id, state, state_reason, spare_machines FROM domains "
          "ORDER BY rowid");
  while (q.executeStep()) {
    DomainRow& row = state.domains.emplace_back();
    row.id = Text(q.getColumn(0));
    row.name = Text(q.getColumn(1));
    row.site_id = Text(q.getColumn(2));
    row.state = q.getColumn(3).getInt();
    row.state_reason = Text(q.getColumn(4));
    if (!q.getColumn(5).isNull()) row.spare_machines = q.getColumn(5).getInt();
  }
}

void ReadMachines(SQLite::Database& db, LoadedState& state) {
  state.machines.reserve(CountRows(db, "machines"));
  SQLite::Statement q(db, R"sql(
      SELECT id, domain_id, tray_index, instance_type_id, gpu_count, state, state_reason, cleaning,
             wipe_pending
      FROM machines ORDER BY rowid)sql");
  while (q.executeStep()) {
    MachineRow& row = state.machines.emplace_back();
    row.id = Text(q.getColumn(0));
    row.domain_id = Text(q.getColumn(1));
    row.tray_index = q.getColumn(2).getInt64();
    row.instance_type_id = Text(q.getColumn(3));
    row.gpu_count = q.getColumn(4).getInt64();
    row.state = q.getColumn(5).getInt();
    row.state_reason = Text(q.getColumn(6));
    row.cleaning = q.getColumn(7).getInt() != 0;
    row.wipe_pending = q.getColumn(8).getInt() != 0;
  }
  const auto index = IndexById(state.machines);
  SQLite::Statement labels(
      db, "SELECT machine_id, key, value FROM machine_labels ORDER BY machine_id, key");
  while (labels.executeStep()) {
    MachineRow& machine = ParentOf(state.machines, index, labels.getColumn(0), "machine_labels");
    machine.labels.emplace(Text(labels.getColumn(1)), Text(labels.getColumn(2)));
  }
}

void ReadTenants(SQLite::Database& db, LoadedState& state) {
  state.tenants.reserve(CountRows(db, "tenants"));
  SQLite::Statement q(db, "SELECT id, org, name, priority FROM tenants ORDER BY rowid");
  while (q.executeStep()) {
    TenantRow& row = state.tenants.emplace_back();
    row.id = Text(q.getColumn(0));
    row.org = Text(q.getColumn(1));
    row.name = Text(q.getColumn(2));
    row.priority = q.getColumn(3).getInt64();
  }
  const auto index = IndexById(state.tenants);
  SQLite::Statement quotas(db,
                           "SELECT tenant_id, instance_type_id, max_machines, site_id "
                           "FROM tenant_quotas ORDER BY tenant_id, instance_type_id, site_id");
  while (quotas.executeStep()) {
    TenantRow& tenant = ParentOf(state.tenants, index, quotas.getColumn(0), "tenant_quotas");
    std::string site = Text(quotas.getColumn(3));
    if (site.empty()) {
      tenant.quotas.emplace(Text(quotas.getColumn(1)), quotas.getColumn(2).getInt64());
    } else {
      tenant.site_quotas.emplace(std::make_pair(Text(quotas.getColumn(1)), std::move(site)),
                                 quotas.getColumn(2).getInt64());
    }
  }
}

void ReadInstances(SQLite::Database& db, LoadedState& state, InstanceColumns columns) {
  state.instances.reserve(CountRows(db, "instances"));
  // The key columns first: kStartUp reads only those.
  const bool all = columns == InstanceColumns::kAll;
  SQLite::Statement q(
      db, absl::StrCat("SELECT id, tenant_id, machine_id, gpu_count, whole_machine, details",
                       all ? ", name, instance_type_id, batch_id, strict, status, "
                             "created_unix_micros, updated_unix_micros, nvlink_partition_ids"
                           : "",
                       " FROM instances ORDER BY rowid"));
  while (q.executeStep()) {
    InstanceRow& row = state.instances.emplace_back();
    row.id = Text(q.getColumn(0));
    row.tenant_id = Text(q.getColumn(1));
    row.machine_id = Text(q.getColumn(2));
    row.gpu_count = q.getColumn(3).getInt64();
    row.whole_machine = q.getColumn(4).getInt() != 0;
    row.details = Text(q.getColumn(5));
    if (!all) continue;
    row.name = Text(q.getColumn(6));
    row.instance_type_id = Text(q.getColumn(7));
    row.batch_id = Text(q.getColumn(8));
    row.strict = q.getColumn(9).getInt() != 0;
    row.status = Text(q.getColumn(10));
    row.created_unix_micros = q.getColumn(11).getInt64();
    row.updated_unix_micros = q.getColumn(12).getInt64();
    row.nvlink_partition_ids = SplitPartitionIds(Text(q.getColumn(13)));
  }
}

void ReadIdempotency(SQLite::Database& db, LoadedState& state) {
  state.idempotency.reserve(CountRows(db, "idempotency"));
  SQLite::Statement q(db, R"sql(
      SELECT tenant_id, request_id, request_fingerprint, response, created_unix_micros
      FROM idempotency ORDER BY rowid)sql");
  while (q.executeStep()) {
    IdempotencyRow& row = state.idempotency.emplace_back();
    row.tenant_id = Text(q.getColumn(0));
    row.request_id = Text(q.getColumn(1));
    row.request_fingerprint = Text(q.getColumn(2));
    row.response = Text(q.getColumn(3));
    row.created_unix_micros = q.getColumn(4).getInt64();
  }
}

void ReadMeta(SQLite::Database& db, LoadedState& state) {
  SQLite::Statement q(db, "SELECT key, value FROM meta ORDER BY rowid");
  while (q.executeStep()) {
    MetaRow& row = state.meta.emplace_back();
    row.key = Text(q.getColumn(0));
    row.value = Text(q.getColumn(1));
  }
}

}  // namespace

std::vector<EventRow> ReadEventRows(SQLite::Database& db, uint64_t after_sequence, size_t limit) {
  SQLite::Statement q(db, R"sql(
      SELECT sequence, time_unix_micros, type, org, tenant_id, payload FROM events
      WHERE sequence > ?1 ORDER BY sequence LIMIT ?2)sql");
  q.bind(1, static_cast<int64_t>(after_sequence));
  q.bind(2, static_cast<int64_t>(limit));
  std::vector<EventRow> rows;
  while (q.executeStep()) {
    EventRow& row = rows.emplace_back();
    row.sequence = static_cast<uint64_t>(q.getColumn(0).getInt64());
    row.time_unix_micros = q.getColumn(1).getInt64();
    row.type = q.getColumn(2).getInt();
    row.org = Text(q.getColumn(3));
    row.tenant_id = Text(q.getColumn(4));
    row.payload = Text(q.getColumn(5));
  }
  return rows;
}

absl::StatusOr<LoadedState> ReadAllRows(SQLite::Database& db, InstanceColumns columns) {
  LoadedState state;
  try {
    state.schema_version = db.execAndGet("PRAGMA user_version").getInt();
    ReadInstanceTypes(db, state);
    ReadDomains(db, state);
    ReadMachines(db, state);
    ReadTenants(db, state);
    ReadInstances(db, state, columns);
    ReadIdempotency(db, state);
    ReadMeta(db, state);
    SQLite::Statement bounds(db, "SELECT IFNULL(MIN(sequence), 0), IFNULL(MAX(sequence), 0) FROM events");
    if (bounds.executeStep()) {
      state.oldest_event = static_cast<uint64_t>(bounds.getColumn(0).getInt64());
      state.newest_event = static_cast<uint64_t>(bounds.getColumn(1).getInt64());
    }
  } catch (const SQLite::Exception& e) {
    const absl::StatusCode code = IsCorruptionCode(e.getErrorCode())
                                      ? absl::StatusCode::kDataLoss
                                      : absl::StatusCode::kUnavailable;
    return SqliteErrorStatus(code, "loading the database", e);
  } catch (const OrphanRowError& e) {
    return absl::DataLossError(absl::StrCat("loading the database: ", e.what()));
  }
  return state;
}

}  // namespace nvlsched::store
