// Writes a ChangeSet's rows with statements prepared once per connection. Internal to store/.
//
// RowWriter knows how each row kind maps onto the schema (store/schema.cc); Store owns the
// transaction around it and the error policy. Apply() runs inside the caller's transaction and
// never commits or rolls back.
//
// Thread-safety: not thread-safe; the owner serialises every use with the connection's.
#ifndef NVLSCHED_STORE_ROW_WRITER_H_
#define NVLSCHED_STORE_ROW_WRITER_H_

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "store/rows.h"

namespace nvlsched::store {

class RowWriter {
 public:
  // Prepares every statement. REQUIRES: `db` is at CurrentSchemaVersion() and outlives this.
  // Errors: UNAVAILABLE if a statement cannot be prepared (schema mismatch).
  static absl::StatusOr<std::unique_ptr<RowWriter>> Prepare(SQLite::Database& db);

  RowWriter(const RowWriter&) = delete;
  RowWriter& operator=(const RowWriter&) = delete;

  // Applies `changes` in the foreign-key order documented on ChangeSet and returns the number
  // of rows SQLite reports changed (parents and child rows). REQUIRES: a write transaction is
  // open. On error the transaction holds a partial write that the caller must roll back.
  // Deleting an id that is not stored is a no-op (a group may create and delete one instance).
  // Errors: UNAVAILABLE naming the row and what failed — a constraint (duplicate name, unknown
  // reference, CHECK) or an I/O error such as "database or disk is full".
  // Cost: O(rows + child rows) statement executions, no statement preparation.
  absl::StatusOr<int64_t> Apply(const ChangeSet& changes);

  // Resets every statement (releases their read cursors) after a failure.
  void ResetAll() noexcept;

 private:
  explicit RowWriter(SQLite::Database& db);

  int64_t UpsertInstanceType(const InstanceTypeRow& row);
  int64_t UpsertDomain(const DomainRow& row);
  int64_t UpsertMachine(const MachineRow& row);
  int64_t DeleteMachine(const std::string& id);
  int64_t UpsertTenant(const TenantRow& row);
  int64_t UpsertInstance(const InstanceRow& row);
  int64_t DeleteInstance(const std::string& id);
  int64_t PutIdempotency(const IdempotencyRow& row);
  int64_t PutMeta(const MetaRow& row);
  int64_t AppendEvent(const EventRow& row);

  SQLite::Statement upsert_instance_type_;
  SQLite::Statement upsert_domain_;
  SQLite::Statement upsert_machine_;
  SQLite::Statement delete_machine_labels_;
  SQLite::Statement insert_machine_label_;
  SQLite::Statement delete_machine_;
  SQLite::Statement upsert_tenant_;
  SQLite::Statement delete_tenant_quotas_;
  SQLite::Statement insert_tenant_quota_;
  SQLite::Statement upsert_instance_;
  SQLite::Statement delete_instance_;
  SQLite::Statement put_idempotency_;
  SQLite::Statement put_meta_;
  SQLite::Statement append_event_;
  SQLite::Statement prune_events_;
};

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_ROW_WRITER_H_
