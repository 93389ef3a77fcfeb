// Allocator: keeping memory equal to the store — the undo journal (rollback of a group
// whose commit failed), restoring instances at start-up, and the invariant check.
#include <algorithm>
#include <cassert>
#include <string>

#include "absl/strings/str_cat.h"
#include "allocator/string_view_compat.h"
#include "allocator/allocator.h"
#include "allocator/fleet_state.h"
#include "allocator/invariants.h"
#include "allocator/undo_journal.h"

namespace nvlsched::allocator {

JournalMark Allocator::Mark() const { return JournalMark{journal_->size(), journal_->epoch()}; }

void Allocator::RollbackTo(JournalMark mark) {
  assert(mark.epoch == journal_->epoch() && "mark taken before ClearJournal");
  assert(mark.position <= journal_->size());
  while (journal_->size() > mark.position) Undo();
  ++version_;
}

void Allocator::ClearJournal() {
  journal_->Clear();
  state_->machine_slots.Recycle();
  state_->claim_slots.Recycle();
  state_->batch_slots.Recycle();
}

void Allocator::Undo() {
  FleetState& s = *state_;
  UndoRecord record = journal_->PopRecord();
  uint32_t i = record.index;
  switch (record.kind) {
    case UndoKind::kTypeAdded:
      s.PopType();
      break;
    case UndoKind::kTypeChanged:
      s.types[i].spec = journal_->PopSavedType();
      break;
    case UndoKind::kDomainAdded:
      s.PopDomain();
      break;
    case UndoKind::kDefaultSparesChanged:
      s.SetDefaultSpares(static_cast<int32_t>(i));
      break;
    case UndoKind::kDomainChanged:
      s.SetDomainSpec(i, journal_->PopSavedDomain());
      break;
    case UndoKind::kMachineAdded:
      s.UnlinkMachine(i);
      s.machine_by_id.Erase(s.machines[i].spec.id);
      s.machines[i].live = false;
      s.machine_slots.Unallocate(i);
      break;
    case UndoKind::kMachineChanged:
      SetMachineSpec(i, journal_->PopSavedMachine());
      break;
    case UndoKind::kMachineRemoved:
      s.machine_slots.Unrelease(i);
      s.machines[i].live = true;
      s.machine_by_id.Insert(s.machines[i].spec.id, i);
      s.LinkMachine(i);
      break;
    case UndoKind::kTenantAdded:
      s.tenant_by_id.erase(s.tenants[i].spec.id);
      s.tenants.pop_back();
      break;
    case UndoKind::kTenantChanged:
      SetTenantSpec(i, journal_->PopSavedTenant());
      break;
    case UndoKind::kClaimAdded: {
      // The slot's generation stays bumped, so the handle Apply gave out stays stale.
      const MachineRecord& machine = s.machines[s.claims[i].machine];
      s.DetachClaim(i);
      s.claim_slots.Unallocate(i);
      s.SyncCell(machine.type, machine.domain);
      break;
    }
    case UndoKind::kClaimReleased: {
      const MachineRecord& machine = s.machines[s.claims[i].machine];
      s.claim_slots.Unrelease(i);
      s.AttachClaim(i);
      s.SyncCell(machine.type, machine.domain);
      break;
    }
    case UndoKind::kBatchAdded:
      assert(s.batches[i].live_claims == 0);
      s.batches[i].live = false;
      s.batch_slots.Unallocate(i);
      break;
    case UndoKind::kBatchReleased:
      s.batch_slots.Unrelease(i);
      s.batches[i].live = true;
      break;
    case UndoKind::kClaimMoved: {
      const MachineIndex from = journal_->PopSavedMachineIndex();
      const MachineRecord& to = s.machines[s.claims[i].machine];
      const TypeIndex type = to.type;
      const DomainIndex domain = to.domain;
      s.DetachClaim(i);
      s.claims[i].machine = from;
      s.AttachClaim(i);
      s.SyncCell(type, domain);
      break;
    }
    case UndoKind::kClaimPreempted: {
      const MachineRecord& machine = s.machines[s.claims[i].machine];
      s.SetPreempted(i, false);
      s.SyncCell(machine.type, machine.domain);
      break;
    }
  }
}

// Messages say "the restored instance": it has no handle yet, and the caller knows which
// one it passed (the daemon prefixes its id).
absl::StatusOr<InstanceHandle> Allocator::RestoreInstance(const InstanceClaim& claim) {
  FleetState& s = *state_;
  TenantIndex tenant = s.FindTenant(claim.tenant_id);
  if (tenant == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("the restored instance names tenant \"",
                                            claim.tenant_id, "\", which is not known"));
  }
  TypeIndex type = s.FindType(claim.instance_type_id);
  if (type == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("the restored instance names instance type \"",
                                            claim.instance_type_id, "\", which is not known"));
  }
  MachineIndex m = s.FindMachine(claim.machine_id);
  if (m == kNoIndex) {
    return absl::NotFoundError(absl::StrCat("the restored instance names machine \"",
                                            claim.machine_id, "\", which is not known"));
  }
  const MachineRecord& machine = s.machines[m];
  if (machine.type != type) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the restored instance is of instance type ", claim.instance_type_id, " but machine ",
        machine.spec.id, " is of type ", machine.spec.instance_type_id));
  }
  int32_t gpus = claim.whole_machine ? machine.spec.gpu_count : claim.gpu_count;
  if (claim.whole_machine && claim.gpu_count != 0 && claim.gpu_count != machine.spec.gpu_count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the restored whole-machine instance says it holds ", claim.gpu_count,
        " GPUs but machine ", machine.spec.id, " has ", machine.spec.gpu_count));
  }
  if (!claim.whole_machine && (gpus < 1 || gpus > machine.spec.gpu_count)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the restored instance holds ", gpus, " GPUs of machine ", machine.spec.id,
        ", which has ", machine.spec.gpu_count, "; it must hold 1..", machine.spec.gpu_count));
  }
  if (machine.whole_claim != kNoIndex) {
    return absl::FailedPreconditionError(absl::StrCat(
        "invariant 1: the restored instance would share machine ", machine.spec.id,
        ", which instance ", s.InstanceName(machine.whole_claim), " already holds whole"));
  }
  if (claim.whole_machine && machine.granular_claims > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "invariant 1: the restored instance would hold machine ", machine.spec.id,
        " whole, but ", machine.granular_claims, " GPU-granular instance(s) already hold ",
        machine.granular_gpus, " of its GPUs"));
  }
  if (!claim.whole_machine && machine.granular_gpus + gpus > machine.spec.gpu_count) {
    return absl::FailedPreconditionError(absl::StrCat(
        "invariant 1: the restored instance would bring machine ", machine.spec.id, " to ",
        machine.granular_gpus + gpus, " GPUs held, more than its ", machine.spec.gpu_count));
  }
  for (const std::string& p : claim.nvlink_partition_ids) {
    if (p.empty()) {
      return absl::InvalidArgumentError("the restored instance lists an empty NVLink partition id");
    }
  }

  ++version_;
  absl::InlinedVector<PartitionIndex, 2> partitions;
  for (const std::string& p : claim.nvlink_partition_ids) partitions.push_back(s.InternPartition(p));
  std::sort(partitions.begin(), partitions.end());
  partitions.erase(std::unique(partitions.begin(), partitions.end()), partitions.end());
  BatchIndex batch = kNoIndex;
  if (!claim.batch_id.empty()) {
    auto it = s.restored_batches.find(claim.batch_id);
    if (it != s.restored_batches.end() && s.batches[it->second].live &&
        s.batches[it->second].id == claim.batch_id) {
      batch = it->second;
    } else {
      batch = s.AddBatch(claim.batch_id);
      journal_->Push(UndoKind::kBatchAdded, batch);
      s.restored_batches[claim.batch_id] = batch;
    }
  }
  ClaimIndex c = s.AllocateClaim();
  ClaimRecord& record = s.claims[c];
  record.batch = batch;
  record.tenant = tenant;
  record.type = type;
  record.machine = m;
  record.gpu_count = gpus;
  record.whole_machine = claim.whole_machine;
  record.topology_optimized = claim.topology_optimized;
  record.spot = claim.spot;
  record.preempted = claim.spot && claim.preempted;
  record.started_micros = claim.started_micros;
  record.partitions = partitions;
  s.AttachClaim(c);
  s.SyncCell(type, machine.domain);
  journal_->Push(UndoKind::kClaimAdded, c);
  return s.HandleOf(c);
}

absl::Status Allocator::CheckInvariants() const { return CheckFleetInvariants(*state_); }

}  // namespace nvlsched::allocator
