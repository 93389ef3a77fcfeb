#include "daemon/engine/load_state.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"

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

absl::StatusOr<std::unique_ptr<State>> LoadState(store::Store& store, LoadReport* report,
                                                 allocator::GangQueue::Options queue_options,
                                                 absl::Duration max_queue_timeout) {
  const absl::Time start = absl::Now();
  absl::StatusOr<store::LoadedState> loaded = store.LoadAll();
  if (!loaded.ok()) return loaded.status();
  const absl::Time read_done = absl::Now();

  auto state = std::make_unique<State>();
  state->ConfigureQueue(queue_options, max_queue_timeout);
  struct QueuedRow {
    v1::Instance record;
    bool whole_machine;
  };
  absl::flat_hash_map<uint64_t, std::vector<QueuedRow>> queued;
  std::vector<uint64_t> queued_order;  // first seen
  uint64_t max_sequence = 0;
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
    if (instance->has_queue()) {
      max_sequence = std::max<uint64_t>(max_sequence, instance->queue().sequence());
    }
    const bool queued_row = instance->status() == v1::INSTANCE_STATUS_QUEUED;
    const bool terminated_row = instance->status() == v1::INSTANCE_STATUS_TERMINATED;
    if ((queued_row || terminated_row) != row.machine_id.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: instance ", row.id, " is ",
          v1::InstanceStatus_Name(instance->status()),
          row.machine_id.empty() ? " but holds no machine" : " but holds a machine"));
    }
    if (queued_row) {
      // Queued again below, request by request, once every row is read.
      const uint64_t sequence = instance->queue().sequence();
      if (queued.find(sequence) == queued.end()) queued_order.push_back(sequence);
      queued[sequence].push_back(QueuedRow{*std::move(instance), row.whole_machine});
      continue;
    }
    if (terminated_row) {
      // Left the queue unplaced: a record that holds nothing.
      state->PutInstance(*std::move(instance), allocator::InstanceHandle{}, row.whole_machine);
      continue;
    }
    // Ids are unique (the primary key), so each row gets a handle of its own.
    absl::StatusOr<allocator::InstanceHandle> handle =
        alloc.RestoreInstance(ClaimOf(*instance, row.whole_machine));
    if (!handle.ok()) return Refuse(absl::StrCat("instance ", row.id), handle.status());
    state->PutInstance(*std::move(instance), *handle, row.whole_machine);
  }
  for (uint64_t sequence : queued_order) {
    std::vector<QueuedRow>& rows = queued[sequence];
    const v1::Instance& first = rows.front().record;
    const v1::QueueInfo& info = first.queue();
    if (alloc.FindInstanceType(first.instance_type_id()) == nullptr ||
        alloc.FindTenant(first.tenant_id()) == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: queued instance ", first.id(),
          " names an unknown tenant or instance type"));
    }
    for (const QueuedRow& r : rows) {
      if (r.record.tenant_id() != first.tenant_id() ||
          r.record.instance_type_id() != first.instance_type_id() ||
          r.record.batch_id() != first.batch_id() ||
          r.whole_machine != rows.front().whole_machine) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the database does not load: queued instances ", first.id(), " and ", r.record.id(),
            " share queue sequence ", sequence, " but not their tenant, type, batch or shape"));
      }
    }
    if (first.batch_id().empty() && rows.size() != 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: ", rows.size(), " queued singles share queue sequence ",
          sequence));
    }
    if (!first.batch_id().empty() && static_cast<int32_t>(rows.size()) != info.count()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the database does not load: queued batch ", first.batch_id(), " has ", rows.size(),
          " instances stored but was queued with ", info.count()));
    }
    allocator::QueuedRequest q;
    q.sequence = sequence;
    q.priority = info.priority();
    q.queued_micros = ToUnixMicros(info.queued());
    q.deadline_micros = ToUnixMicros(info.deadline());
    q.is_batch = !first.batch_id().empty();
    std::vector<std::string> partitions = PartitionsOf(first);
    if (q.is_batch) {
      q.batch.tenant_id = first.tenant_id();
      q.batch.instance_type_id = first.instance_type_id();
      q.batch.count = info.count();
      q.batch.topology_optimized = first.topology_optimized();
      q.batch.spread_policy = ToCore(info.spread_policy());
      q.batch.nvlink_partition_ids = std::move(partitions);
      q.batch.spot = first.billing_mode() == v1::BILLING_MODE_SPOT;
      q.batch.segment_size = info.segment_size();
    } else {
      q.single.tenant_id = first.tenant_id();
      q.single.instance_type_id = first.instance_type_id();
      q.single.gpu_count = rows.front().whole_machine ? 0 : first.gpu_count();
      q.single.site_id = info.site_id();
      q.single.nvlink_partition_ids = std::move(partitions);
      q.single.spot = first.billing_mode() == v1::BILLING_MODE_SPOT;
    }
    if (!info.pinned_domain_id().empty()) {
      q.pinned_domain = alloc.DomainIndexOf(info.pinned_domain_id());
      if (q.pinned_domain == allocator::kNoIndex) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the database does not load: queued instance ", first.id(),
            " waits for NVLink domain ", info.pinned_domain_id(), ", which does not exist"));
      }
    }
    std::vector<v1::Instance> records;
    for (QueuedRow& r : rows) {
      q.gpus += r.record.gpu_count();
      records.push_back(std::move(r.record));
    }
    state->EnqueueInstances(std::move(q), absl::MakeSpan(records));
  }
  state->ResumeQueueSequencesAfter(max_sequence);
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
