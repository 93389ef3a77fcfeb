#include "store/row_writer.h"

#include <SQLiteCpp/Exception.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "store/sqlite_status.h"

namespace nvlsched::store {
namespace {

// Strings and blobs are bound without copying: each statement runs to completion while the
// ChangeSet is alive, and every use rebinds all parameters first.
void BindText(SQLite::Statement& stmt, int index, const std::string& value) {
  stmt.bindNoCopy(index, value);
}
void BindBlob(SQLite::Statement& stmt, int index, const std::string& value) {
  stmt.bindNoCopy(index, static_cast<const void*>(value.data()), static_cast<int>(value.size()));
}
// "" means "none" and is stored as NULL.
void BindTextOrNull(SQLite::Statement& stmt, int index, const std::string& value) {
  if (value.empty()) {
    stmt.bind(index);
  } else {
    stmt.bindNoCopy(index, value);
  }
}
void BindBool(SQLite::Statement& stmt, int index, bool value) {
  stmt.bind(index, static_cast<int32_t>(value ? 1 : 0));
}

int64_t Run(SQLite::Statement& stmt) {
  const int changed = stmt.exec();
  stmt.tryReset();
  return changed;
}

}  // namespace

RowWriter::RowWriter(SQLite::Database& db)
    : upsert_instance_type_(db, R"sql(
        INSERT INTO instance_types (id, name, gpu_model, gpus_per_machine, gpu_memory_mib,
                                    price_per_hour_micros, interconnect,
                                    spot_price_per_hour_micros)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
        ON CONFLICT (id) DO UPDATE SET
          name = excluded.name, gpu_model = excluded.gpu_model,
          gpus_per_machine = excluded.gpus_per_machine, gpu_memory_mib = excluded.gpu_memory_mib,
          price_per_hour_micros = excluded.price_per_hour_micros,
          interconnect = excluded.interconnect,
          spot_price_per_hour_micros = excluded.spot_price_per_hour_micros)sql"),
      upsert_domain_(db, R"sql(
        INSERT INTO domains (id, name, site_id, state, state_reason, spare_machines)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, site_id = excluded.site_id,
          state = excluded.state, state_reason = excluded.state_reason,
          spare_machines = excluded.spare_machines)sql"),
      upsert_machine_(db, R"sql(
        INSERT INTO machines (id, domain_id, tray_index, instance_type_id, gpu_count, state,
                              state_reason, cleaning, wipe_pending)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
        ON CONFLICT (id) DO UPDATE SET
          domain_id = excluded.domain_id, tray_index = excluded.tray_index,
          instance_type_id = excluded.instance_type_id, gpu_count = excluded.gpu_count,
          state = excluded.state, state_reason = excluded.state_reason,
          cleaning = excluded.cleaning, wipe_pending = excluded.wipe_pending)sql"),
      delete_machine_labels_(db, "DELETE FROM machine_labels WHERE machine_id = ?1"),
      insert_machine_label_(
          db, "INSERT INTO machine_labels (machine_id, key, value) VALUES (?1, ?2, ?3)"),
      delete_machine_(db, "DELETE FROM machines WHERE id = ?1"),
      upsert_tenant_(db, R"sql(
        INSERT INTO tenants (id, org, name, priority) VALUES (?1, ?2, ?3, ?4)
        ON CONFLICT (id) DO UPDATE SET org = excluded.org, name = excluded.name,
          priority = excluded.priority)sql"),
      delete_tenant_quotas_(db, "DELETE FROM tenant_quotas WHERE tenant_id = ?1"),
      insert_tenant_quota_(db, R"sql(
        INSERT INTO tenant_quotas (tenant_id, instance_type_id, max_machines, site_id)
        VALUES (?1, ?2, ?3, ?4))sql"),
      upsert_instance_(db, R"sql(
        INSERT INTO instances (id, name, tenant_id, instance_type_id, machine_id, gpu_count,
                               whole_machine, batch_id, strict, status, created_unix_micros,
                               updated_unix_micros, details, nvlink_partition_ids)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
        ON CONFLICT (id) DO UPDATE SET
          name = excluded.name, tenant_id = excluded.tenant_id,
          instance_type_id = excluded.instance_type_id, machine_id = excluded.machine_id,
          gpu_count = excluded.gpu_count, whole_machine = excluded.whole_machine,
          batch_id = excluded.batch_id, strict = excluded.strict, status = excluded.status,
          created_unix_micros = excluded.created_unix_micros,
          updated_unix_micros = excluded.updated_unix_micros, details = excluded.details,
          nvlink_partition_ids = excluded.nvlink_partition_ids)sql"),
      delete_instance_(db, "DELETE FROM instances WHERE id = ?1"),
      put_idempotency_(db, R"sql(
        INSERT INTO idempotency (tenant_id, request_id, request_fingerprint, response,
                                 created_unix_micros)
        VALUES (?1, ?2, ?3, ?4, ?5)
        ON CONFLICT (tenant_id, request_id) DO UPDATE SET
          request_fingerprint = excluded.request_fingerprint, response = excluded.response,
          created_unix_micros = excluded.created_unix_micros)sql"),
      put_meta_(db, R"sql(
        INSERT INTO meta (key, value) VALUES (?1, ?2)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value)sql"),
      append_event_(db, R"sql(
        INSERT INTO events (sequence, time_unix_micros, type, org, tenant_id, payload)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql"),
      prune_events_(db, "DELETE FROM events WHERE sequence <= ?1") {}

int64_t RowWriter::AppendEvent(const EventRow& row) {
  SQLite::Statement& s = append_event_;
  s.bind(1, static_cast<int64_t>(row.sequence));
  s.bind(2, row.time_unix_micros);
  s.bind(3, row.type);
  BindText(s, 4, row.org);
  BindText(s, 5, row.tenant_id);
  BindBlob(s, 6, row.payload);
  return Run(s);
}

absl::StatusOr<std::unique_ptr<RowWriter>> RowWriter::Prepare(SQLite::Database& db) {
  try {
    return std::unique_ptr<RowWriter>(new RowWriter(db));
  } catch (const SQLite::Exception& e) {
    return SqliteErrorStatus(absl::StatusCode::kUnavailable,
                             "preparing the store's write statements", e);
  }
}

int64_t RowWriter::UpsertInstanceType(const InstanceTypeRow& row) {
  SQLite::Statement& s = upsert_instance_type_;
  BindText(s, 1, row.id);
  BindText(s, 2, row.name);
  BindText(s, 3, row.gpu_model);
  s.bind(4, row.gpus_per_machine);
  s.bind(5, row.gpu_memory_mib);
  s.bind(6, row.price_per_hour_micros);
  BindText(s, 7, row.interconnect);
  s.bind(8, row.spot_price_per_hour_micros);
  return Run(s);
}

int64_t RowWriter::UpsertDomain(const DomainRow& row) {
  SQLite::Statement& s = upsert_domain_;
  BindText(s, 1, row.id);
  BindText(s, 2, row.name);
  BindText(s, 3, row.site_id);
  s.bind(4, row.state);
  BindText(s, 5, row.state_reason);
  if (row.spare_machines.has_value()) {
    s.bind(6, *row.spare_machines);
  } else {
    s.bind(6);
  }
  return Run(s);
}

int64_t RowWriter::UpsertMachine(const MachineRow& row) {
  SQLite::Statement& s = upsert_machine_;
  BindText(s, 1, row.id);
  BindText(s, 2, row.domain_id);
  s.bind(3, row.tray_index);
  BindText(s, 4, row.instance_type_id);
  s.bind(5, row.gpu_count);
  s.bind(6, static_cast<int32_t>(row.state));
  BindText(s, 7, row.state_reason);
  s.bind(8, row.cleaning ? 1 : 0);
  s.bind(9, row.wipe_pending ? 1 : 0);
  int64_t changed = Run(s);
  BindText(delete_machine_labels_, 1, row.id);
  changed += Run(delete_machine_labels_);
  for (const auto& [key, value] : row.labels) {
    BindText(insert_machine_label_, 1, row.id);
    BindText(insert_machine_label_, 2, key);
    BindText(insert_machine_label_, 3, value);
    changed += Run(insert_machine_label_);
  }
  return changed;
}

int64_t RowWriter::DeleteMachine(const std::string& id) {
  BindText(delete_machine_labels_, 1, id);
  int64_t changed = Run(delete_machine_labels_);
  BindText(delete_machine_, 1, id);
  return changed + Run(delete_machine_);
}

int64_t RowWriter::UpsertTenant(const TenantRow& row) {
  SQLite::Statement& s = upsert_tenant_;
  BindText(s, 1, row.id);
  BindText(s, 2, row.org);
  BindText(s, 3, row.name);
  s.bind(4, row.priority);
  int64_t changed = Run(s);
  BindText(delete_tenant_quotas_, 1, row.id);
  changed += Run(delete_tenant_quotas_);
  for (const auto& [instance_type_id, max_machines] : row.quotas) {
    BindText(insert_tenant_quota_, 1, row.id);
    BindText(insert_tenant_quota_, 2, instance_type_id);
    insert_tenant_quota_.bind(3, max_machines);
    BindText(insert_tenant_quota_, 4, std::string());
    changed += Run(insert_tenant_quota_);
  }
  for (const auto& [key, max_machines] : row.site_quotas) {
    BindText(insert_tenant_quota_, 1, row.id);
    BindText(insert_tenant_quota_, 2, key.first);
    insert_tenant_quota_.bind(3, max_machines);
    BindText(insert_tenant_quota_, 4, key.second);
    changed += Run(insert_tenant_quota_);
  }
  return changed;
}

int64_t RowWriter::UpsertInstance(const InstanceRow& row) {
  SQLite::Statement& s = upsert_instance_;
  BindText(s, 1, row.id);
  BindText(s, 2, row.name);
  BindText(s, 3, row.tenant_id);
  BindText(s, 4, row.instance_type_id);
  BindTextOrNull(s, 5, row.machine_id);
  s.bind(6, row.gpu_count);
  BindBool(s, 7, row.whole_machine);
  BindTextOrNull(s, 8, row.batch_id);
  BindBool(s, 9, row.strict);
  BindText(s, 10, row.status);
  s.bind(11, row.created_unix_micros);
  s.bind(12, row.updated_unix_micros);
  BindBlob(s, 13, row.details);
  // Bound with a copy: the joined text lives only in this call.
  s.bind(14, JoinPartitionIds(row.nvlink_partition_ids));
  return Run(s);
}

int64_t RowWriter::DeleteInstance(const std::string& id) {
  BindText(delete_instance_, 1, id);
  return Run(delete_instance_);
}

int64_t RowWriter::PutIdempotency(const IdempotencyRow& row) {
  SQLite::Statement& s = put_idempotency_;
  BindText(s, 1, row.tenant_id);
  BindText(s, 2, row.request_id);
  BindBlob(s, 3, row.request_fingerprint);
  BindBlob(s, 4, row.response);
  s.bind(5, row.created_unix_micros);
  return Run(s);
}

int64_t RowWriter::PutMeta(const MetaRow& row) {
  BindText(put_meta_, 1, row.key);
  BindBlob(put_meta_, 2, row.value);
  return Run(put_meta_);
}

absl::StatusOr<int64_t> RowWriter::Apply(const ChangeSet& changes) {
  // What is being written, for the error message.
  const char* what = "";
  const std::string* id = nullptr;
  int64_t changed = 0;
  try {
    what = "upserting instance type";
    for (const InstanceTypeRow& row : changes.upsert_instance_types) {
      id = &row.id;
      changed += UpsertInstanceType(row);
    }
    what = "upserting domain";
    for (const DomainRow& row : changes.upsert_domains) {
      id = &row.id;
      changed += UpsertDomain(row);
    }
    what = "upserting tenant";
    for (const TenantRow& row : changes.upsert_tenants) {
      id = &row.id;
      changed += UpsertTenant(row);
    }
    what = "deleting instance";
    for (const std::string& instance_id : changes.delete_instance_ids) {
      id = &instance_id;
      changed += DeleteInstance(instance_id);
    }
    what = "upserting machine";
    for (const MachineRow& row : changes.upsert_machines) {
      id = &row.id;
      changed += UpsertMachine(row);
    }
    what = "upserting instance";
    for (const InstanceRow& row : changes.upsert_instances) {
      id = &row.id;
      changed += UpsertInstance(row);
    }
    what = "deleting machine";
    for (const std::string& machine_id : changes.delete_machine_ids) {
      id = &machine_id;
      changed += DeleteMachine(machine_id);
    }
    what = "storing idempotency record for request";
    for (const IdempotencyRow& row : changes.put_idempotency) {
      id = &row.request_id;
      changed += PutIdempotency(row);
    }
    what = "storing meta key";
    for (const MetaRow& row : changes.put_meta) {
      id = &row.key;
      changed += PutMeta(row);
    }
    std::string sequence;
    id = &sequence;
    what = "appending event";
    for (const EventRow& row : changes.append_events) {
      sequence = absl::StrCat(row.sequence);
      changed += AppendEvent(row);
    }
    if (changes.prune_events_through > 0) {
      what = "pruning events through";
      sequence = absl::StrCat(changes.prune_events_through);
      prune_events_.bind(1, static_cast<int64_t>(changes.prune_events_through));
      changed += Run(prune_events_);
    }
  } catch (const SQLite::Exception& e) {
    ResetAll();
    return SqliteErrorStatus(absl::StatusCode::kUnavailable,
                             absl::StrCat(what, " \"", id ? *id : std::string(), "\""), e);
  }
  return changed;
}

void RowWriter::ResetAll() noexcept {
  for (SQLite::Statement* s :
       {&upsert_instance_type_, &upsert_domain_, &upsert_machine_, &delete_machine_labels_,
        &insert_machine_label_, &delete_machine_, &upsert_tenant_, &delete_tenant_quotas_,
        &insert_tenant_quota_, &upsert_instance_, &delete_instance_, &put_idempotency_, &put_meta_,
        &append_event_, &prune_events_}) {
    s->tryReset();
  }
}

}  // namespace nvlsched::store
