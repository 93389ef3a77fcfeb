#include "daemon/engine/load_state.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/api/convert.h"
#include "daemon/engine/rows.h"

namespace nvlsched::daemon {
namespace {

absl::Status Refuse(absl::string_view what, const absl::Status& cause) {
  return absl::FailedPreconditionError(absl::StrCat(
      "the database does not load: ", what, ": ", cause.message(),
      ". nvlschedd does not repair a database: restore a snapshot (--db=SNAPSHOT) or fix it"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<State>> LoadState(store::Store& store, LoadReport* report) {
  const absl::Time start = absl::Now();
  absl::StatusOr<store::LoadedState> loaded = store.LoadAll();
  if (!loaded.ok()) return loaded.status();
  const absl::Time read_done = absl::Now();

  auto state = std::make_unique<State>();
  allocator::Allocator& alloc = state->allocator();
  for (const store::InstanceTypeRow& row : loaded->instance_types) {
    if (absl::Status s = alloc.UpsertInstanceType(ToCore(row)); !s.ok()) {
      return Refuse(absl::StrCat("instance type ", row.id), s);
    }
  }
  for (const store::DomainRow& row : loaded->domains) {
    if (absl::Status s = alloc.UpsertDomain(ToCore(row)); !s.ok()) {
      return Refuse(absl::StrCat("domain ", row.id), s);
    }
  }
  for (const store::MachineRow& row : loaded->machines) {
    if (absl::Status s = alloc.UpsertMachine(ToCore(row)); !s.ok()) {
      return Refuse(absl::StrCat("machine ", row.id), s);
    }
  }
  for (const store::TenantRow& row : loaded->tenants) {
    if (absl::Status s = alloc.UpsertTenant(ToCore(row)); !s.ok()) {
      return Refuse(absl::StrCat("tenant ", row.id), s);
    }
  }
  for (const store::InstanceRow& row : loaded->instances) {
    absl::StatusOr<v1::Instance> instance = InstanceFromRow(row);
    if (!instance.ok()) return instance.status();
    if (instance->id() != row.id || instance->machine_id() != row.machine_id ||
        instance->tenant_id() != row.tenant_id || instance->gpu_count() != row.gpu_count) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: instance ", row.id,
          ": its columns and its stored record disagree (machine ", row.machine_id, " vs ",
          instance->machine_id(), ")"));
    }
    // Ids are unique (the primary key), so each row gets a handle of its own.
    absl::StatusOr<allocator::InstanceHandle> handle =
        alloc.RestoreInstance(ClaimOf(*instance, row.whole_machine));
    if (!handle.ok()) return Refuse(absl::StrCat("instance ", row.id), handle.status());
    state->PutInstance(*std::move(instance), *handle, row.whole_machine);
  }
  for (const store::IdempotencyRow& row : loaded->idempotency) {
    state->PutIdempotency(row.tenant_id, row.request_id,
                          IdempotencyEntry{row.request_fingerprint, row.response,
                                           row.created_unix_micros});
  }
  if (absl::Status s = alloc.CheckInvariants(); !s.ok()) {
    return Refuse("invariant check", s);
  }
  state->ClearJournal();
  state->SetEventBounds(loaded->oldest_event, loaded->newest_event);

  if (report != nullptr) {
    report->machines = loaded->machines.size();
    report->instances = loaded->instances.size();
    report->read_time = read_done - start;
    report->rebuild_time = absl::Now() - read_done;
  }
  return state;
}

}  // namespace nvlsched::daemon
