#include "daemon/engine/state.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <iterator>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "allocator/string_view_compat.h"
#include "absl/time/time.h"
#include "daemon/api/convert.h"
#include "daemon/engine/instance_records.h"
#include "daemon/engine/rows.h"

namespace nvlsched::daemon {

State::State() {
  // Messages from the allocator (and a drained machine's state_reason) name instances by id.
  allocator_.SetInstanceNamer(
      [this](allocator::InstanceHandle handle) { return InstanceIdOf(handle); });
}

std::string State::NameKey(absl::string_view tenant_id, absl::string_view name) {
  return absl::StrCat(tenant_id, "\n", name);
}

std::string State::IdempotencyKey(absl::string_view tenant_id, absl::string_view request_id) {
  return absl::StrCat(tenant_id, "\n", request_id);
}

const State::InstanceEntry* State::FindInstance(absl::string_view id) const {
  auto it = instances_.find(id);
  return it == instances_.end() ? nullptr : &it->second;
}

std::string State::InstanceIdOf(allocator::InstanceHandle handle) const {
  auto it = ids_by_handle_.find(handle);
  return it == ids_by_handle_.end() ? std::string() : it->second;
}

bool State::NameTaken(absl::string_view tenant_id, absl::string_view name) const {
  return names_.contains(NameKey(tenant_id, name));
}

const IdempotencyEntry* State::FindIdempotency(absl::string_view tenant_id,
                                               absl::string_view request_id) const {
  auto it = idempotency_.find(IdempotencyKey(tenant_id, request_id));
  return it == idempotency_.end() ? nullptr : &it->second;
}

// ------------------------------------------------------------------ Inventory changes

absl::Status State::UpsertInstanceType(const allocator::InstanceType& type) {
  if (absl::Status s = allocator_.UpsertInstanceType(type); !s.ok()) return s;
  Record(RecordKind::kInstanceType, type.id);
  return absl::OkStatus();
}

absl::Status State::UpsertDomain(const allocator::Domain& domain) {
  std::optional<allocator::Domain> before;
  if (const allocator::Domain* d = allocator_.FindDomain(domain.id)) before = *d;
  if (absl::Status s = allocator_.UpsertDomain(domain); !s.ok()) return s;
  Record(RecordKind::kDomain, domain.id);
  journal_.back().previous_domain = std::move(before);
  queue_changed_ = true;  // a domain's state may have changed (fleet files carry it)
  return absl::OkStatus();
}

absl::Status State::SetDefaultSpareMachines(int32_t spares) {
  if (spares == allocator_.default_spare_machines()) return absl::OkStatus();
  if (absl::Status s = allocator_.SetDefaultSpareMachines(spares); !s.ok()) return s;
  Record(RecordKind::kFleetSettings, store::kDefaultSpareMachinesKey);
  queue_changed_ = true;  // fewer spares may unblock a waiting request
  return absl::OkStatus();
}

absl::Status State::SetDomainState(absl::string_view domain_id, allocator::DomainState state,
                                   absl::string_view reason) {
  std::optional<allocator::Domain> before;
  if (const allocator::Domain* d = allocator_.FindDomain(allocator::StdView(domain_id))) {
    before = *d;
  }
  if (absl::Status s = allocator_.SetDomainState(allocator::StdView(domain_id), state,
                                                 allocator::StdView(reason));
      !s.ok()) {
    return s;
  }
  Record(RecordKind::kDomain, domain_id);
  journal_.back().previous_domain = std::move(before);
  queue_changed_ = true;  // a domain back to READY may unblock a waiting request
  return absl::OkStatus();
}

void State::RecordMachine(absl::string_view machine_id, const allocator::Machine* before) {
  queue_changed_ = true;
  Record(RecordKind::kMachine, machine_id);
  if (before != nullptr) journal_.back().previous_machine = *before;
}

absl::Status State::UpsertMachine(const allocator::Machine& machine) {
  std::optional<allocator::Machine> before;
  if (const allocator::Machine* m = allocator_.FindMachine(machine.id)) before = *m;
  if (absl::Status s = allocator_.UpsertMachine(machine); !s.ok()) return s;
  RecordMachine(machine.id, before ? &*before : nullptr);
  return absl::OkStatus();
}

absl::Status State::SetMachineState(absl::string_view machine_id, allocator::MachineState state,
                                    absl::string_view reason) {
  const std::string_view id = allocator::StdView(machine_id);
  std::optional<allocator::Machine> before;
  if (const allocator::Machine* m = allocator_.FindMachine(id)) before = *m;
  if (absl::Status s = allocator_.SetMachineState(id, state, allocator::StdView(reason)); !s.ok()) {
    return s;
  }
  RecordMachine(machine_id, before ? &*before : nullptr);
  return absl::OkStatus();
}

absl::Status State::RemoveMachine(absl::string_view machine_id) {
  const std::string_view id = allocator::StdView(machine_id);
  std::optional<allocator::Machine> before;
  if (const allocator::Machine* m = allocator_.FindMachine(id)) before = *m;
  if (absl::Status s = allocator_.RemoveMachine(id); !s.ok()) return s;
  RecordMachine(machine_id, before ? &*before : nullptr);
  return absl::OkStatus();
}

absl::Status State::UpsertTenant(const allocator::Tenant& tenant) {
  std::optional<allocator::Tenant> before;
  if (const allocator::Tenant* t = allocator_.FindTenant(tenant.id)) before = *t;
  if (absl::Status s = allocator_.UpsertTenant(tenant); !s.ok()) return s;
  Record(RecordKind::kTenant, tenant.id);
  journal_.back().previous_tenant = std::move(before);
  queue_changed_ = true;  // a quota change may unblock a waiting request
  return absl::OkStatus();
}

// ------------------------------------------------------------------ Instance changes

namespace {

// The (deadline, id) key of a preempted instance that still holds its machine, or nullopt.
std::optional<std::pair<int64_t, std::string>> PreemptionKey(const std::string& id,
                                                             const State::InstanceEntry& entry) {
  if (entry.handle.generation == 0 || !entry.record->has_preemption()) return std::nullopt;
  return std::make_pair(ToUnixMicros(entry.record->preemption().preemption_deadline()), id);
}

}  // namespace

std::optional<State::InstanceEntry> State::TakeInstance(const std::string& id) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return std::nullopt;
  if (auto key = PreemptionKey(id, it->second)) preemption_deadlines_.erase(*key);
  names_.erase(NameKey(it->second.record->tenant_id(), it->second.record->name()));
  // Queued and terminated records hold no claim: their handle is the default, never valid.
  if (it->second.handle.generation != 0) ids_by_handle_.erase(it->second.handle);
  std::optional<InstanceEntry> taken(std::move(it->second));  // moved, not copied
  instances_.erase(it);
  return taken;
}

void State::RestoreInstance(const std::string& id, std::optional<InstanceEntry> previous) {
  TakeInstance(id);
  if (previous.has_value()) {
    if (auto key = PreemptionKey(id, *previous)) preemption_deadlines_.insert(*std::move(key));
    names_.insert(NameKey(previous->record->tenant_id(), previous->record->name()));
    if (previous->handle.generation != 0) ids_by_handle_[previous->handle] = id;
    instances_.emplace(id, *std::move(previous));
  }
}

void State::PutInstance(v1::Instance instance, allocator::InstanceHandle handle,
                        bool whole_machine) {
  std::string id = instance.id();
  // The record it replaces moves into the change record (for the undo and its event).
  journal_.push_back(ChangeEntry{RecordKind::kInstance, id, TakeInstance(id)});
  RestoreInstance(id, InstanceEntry{RecordPtr(std::move(instance)), handle, whole_machine});
}

void State::LoadInstances(absl::Span<LoadedInstance> instances,
                          absl::btree_set<std::string> names) {
  assert(instances_.empty() && names_.empty() && ids_by_handle_.empty());
  assert(names.size() == instances.size());
  names_ = std::move(names);
  ids_by_handle_.reserve(instances.size());
  for (LoadedInstance& loaded : instances) {
    assert(instances_.empty() || std::prev(instances_.end())->first < loaded.id);
    // As PreemptionKey: only a record that holds its machine waits for a deadline.
    if (loaded.preemption_deadline.has_value() && loaded.handle.generation != 0) {
      preemption_deadlines_.emplace(*loaded.preemption_deadline, loaded.id);
    }
    if (loaded.handle.generation != 0) ids_by_handle_.emplace(loaded.handle, loaded.id);
    instances_.emplace_hint(
        instances_.end(), std::move(loaded.id),
        InstanceEntry{std::move(loaded.record), loaded.handle, loaded.whole_machine});
  }
}

void State::ReplaceInstance(const allocator::ReplacePlan& plan, v1::Instance record) {
  const InstanceEntry* entry = FindInstance(record.id());
  const allocator::InstanceHandle handle = entry->handle;
  const bool whole = entry->whole_machine;
  const allocator::Machine before = allocator_.MachineAt(plan.from);
  allocator_.Apply(plan);
  queue_changed_ = true;  // the old machine may be free now
  PutInstance(std::move(record), handle, whole);
  RecordReleasedMachines({before});
}

void State::EraseInstance(const std::string& id) {
  std::optional<InstanceEntry> taken = TakeInstance(id);
  if (!taken.has_value()) return;
  journal_.push_back(ChangeEntry{RecordKind::kInstance, id, std::move(taken)});
}

void State::PlaceInstances(const allocator::Placement& placement, absl::string_view batch_id,
                           absl::Span<v1::Instance> records) {
  absl::InlinedVector<allocator::InstanceHandle, allocator::kInlineBatch> handles(records.size());
  allocator_.Apply(placement, allocator::StdView(batch_id),
                   absl::MakeSpan(handles));
  for (size_t i = 0; i < records.size(); ++i) {
    PutInstance(std::move(records[i]), handles[i], placement.instances[i].whole_machine);
  }
}

std::vector<allocator::Machine> State::ApplyRelease(const allocator::ReleasePlan& plan,
                                                   absl::Span<const std::string> ids) {
  // A health issue drains the machines (MAINTENANCE) and cleaning marks the ones left unheld
  // as waiting for a wipe (READY ones go CLEANING): the allocator changes them, and they are
  // recorded here, as they were before.
  std::vector<allocator::Machine> before;
  if (plan.machine_health_issue || plan.clean) {
    for (const std::string& id : ids) {
      const InstanceEntry* entry = FindInstance(id);
      if (entry == nullptr) continue;
      const allocator::Machine* m = allocator_.FindMachine(entry->record->machine_id());
      if (m == nullptr) continue;
      if (std::none_of(before.begin(), before.end(),
                       [&](const allocator::Machine& b) { return b.id == m->id; })) {
        before.push_back(*m);
      }
    }
  }
  allocator_.Apply(plan);
  queue_changed_ = true;
  return before;
}

void State::RecordReleasedMachines(absl::Span<const allocator::Machine> before) {
  for (const allocator::Machine& b : before) {
    const allocator::Machine* now = allocator_.FindMachine(b.id);
    if (now != nullptr && (now->state != b.state || now->state_reason != b.state_reason ||
                           now->wipe_pending != b.wipe_pending)) {
      RecordMachine(b.id, &b);
    }
  }
}

void State::ReleaseInstances(const allocator::ReleasePlan& plan,
                             absl::Span<const std::string> ids) {
  const std::vector<allocator::Machine> before = ApplyRelease(plan, ids);
  for (const std::string& id : ids) EraseInstance(id);
  // After the instances: the events say "deleted", then what became of the machine.
  RecordReleasedMachines(before);
}

void State::PutIdempotency(absl::string_view tenant_id, absl::string_view request_id,
                           IdempotencyEntry entry) {
  std::string key = IdempotencyKey(tenant_id, request_id);
  ChangeEntry change{RecordKind::kIdempotency, key};
  auto it = idempotency_.find(key);
  if (it != idempotency_.end()) change.previous_idempotency = it->second;
  journal_.push_back(std::move(change));
  idempotency_[key] = std::move(entry);
}

// ------------------------------------------------------------------ The queue

const std::vector<std::string>* State::QueuedIds(uint64_t sequence) const {
  auto it = queued_ids_.find(sequence);
  return it == queued_ids_.end() ? nullptr : &it->second;
}

void State::EnqueueInstances(allocator::QueuedRequest request, absl::Span<v1::Instance> records) {
  const uint64_t sequence = request.sequence;
  std::vector<std::string> ids;
  ids.reserve(records.size());
  for (v1::Instance& record : records) {
    ids.push_back(record.id());
    PutInstance(std::move(record), allocator::InstanceHandle{}, /*whole_machine=*/
                request.is_batch || request.single.gpu_count == 0);
  }
  journal_.push_back(ChangeEntry{RecordKind::kQueue, absl::StrCat(sequence)});
  queue_.Insert(allocator_, std::move(request));
  queue_changed_ = true;
  queued_ids_[sequence] = std::move(ids);
}

std::vector<std::string> State::RecordDequeued(const allocator::QueuedRequest& request) {
  auto it = queued_ids_.find(request.sequence);
  std::vector<std::string> ids = std::move(it->second);
  queued_ids_.erase(it);
  ChangeEntry entry{RecordKind::kQueue, absl::StrCat(request.sequence)};
  entry.previous_queued = request;
  entry.previous_queued_ids = ids;
  journal_.push_back(std::move(entry));
  return ids;
}

void State::CancelQueued(uint64_t sequence) {
  std::optional<allocator::QueuedRequest> request = queue_.Remove(sequence);
  queue_changed_ = true;
  for (const std::string& id : RecordDequeued(*request)) EraseInstance(id);
}


State::QueuePass State::RunQueue(absl::Time now) {
  // The pass removes each request from the queue before it calls the sink; the sink records
  // that removal and the records' new state through the change methods.
  class Sink : public allocator::GangQueue::Sink {
   public:
    Sink(State& state, absl::Time now, QueuePass& pass) : state_(state), now_(now), pass_(pass) {}

    void Placed(const allocator::QueuedRequest& request,
                const allocator::Placement& placement) override {
      // The queue has removed it already: record that, for the undo.
      std::vector<std::string> ids = state_.RecordDequeued(request);
      const absl::Duration waited = now_ - absl::FromUnixMicros(request.queued_micros);
      std::vector<v1::Instance> records;
      records.reserve(ids.size());
      for (size_t i = 0; i < ids.size(); ++i) {
        v1::Instance record = *state_.FindInstance(ids[i])->record;
        SetPlacement(state_, placement.instances[i], &record);
        v1::QueueInfo* info = record.mutable_queue();
        info->set_position(0);
        *info->mutable_waited() = ToDurationProto(waited);
        AppendStatus(now_, v1::INSTANCE_STATUS_PENDING,
                     absl::StrCat("placed from the queue after ", absl::FormatDuration(waited),
                                  " on machine ", record.machine_id(), " in NVLink domain ",
                                  record.nvlink_domain_id()),
                     &record);
        records.push_back(std::move(record));
      }
      const std::string batch_id = records.empty() ? "" : records[0].batch_id();
      state_.PlaceInstances(placement, batch_id, absl::MakeSpan(records));
      ++pass_.placed;
      pass_.waits.push_back(waited);
      if (request.pinned_domain != allocator::kNoIndex) pass_.preemptor_waits.push_back(waited);
    }

    void Expired(const allocator::QueuedRequest& request) override {
      // The queue has removed it already: record that, for the undo.
      std::vector<std::string> ids = state_.RecordDequeued(request);
      const absl::Time queued = absl::FromUnixMicros(request.queued_micros);
      const absl::Time deadline = absl::FromUnixMicros(request.deadline_micros);
      for (const std::string& id : ids) {
        const InstanceEntry* entry = state_.FindInstance(id);
        v1::Instance record = *entry->record;
        v1::QueueInfo* info = record.mutable_queue();
        info->set_position(0);
        *info->mutable_waited() = ToDurationProto(now_ - queued);
        AppendStatus(now_, v1::INSTANCE_STATUS_TERMINATED,
                  absl::StrCat("queue_timeout of ", absl::FormatDuration(deadline - queued),
                               " passed before capacity was free; nothing was placed and its "
                               "quota is released. Delete it to free its name, then create it "
                               "again if it is still wanted"),
                  &record);
        state_.PutInstance(std::move(record), allocator::InstanceHandle{}, entry->whole_machine);
      }
      ++pass_.expired;
    }

   private:
    State& state_;
    absl::Time now_;
    QueuePass& pass_;
  };

  QueuePass pass;
  queue_changed_ = false;
  if (queue_.empty()) {
    // The last request left (cancelled): its reservation goes with it.
    if (!queue_.reservations().empty()) queue_.RestoreReservations({});
    return pass;
  }
  Sink sink(*this, now, pass);
  queue_.Schedule(allocator_, absl::ToUnixMicros(now), sink);
  return pass;
}

// ------------------------------------------------------------------ Preemption

void State::PreemptInstances(const allocator::PreemptionPlan& plan,
                             const v1::Preemption& preemption, absl::Time now) {
  allocator_.MarkPreempted(plan);
  PreemptionStat stat;
  stat.victims = static_cast<int>(plan.victims.size());
  stat.gangs = plan.gangs;
  stat.gpu_hours = static_cast<double>(plan.gpu_seconds) / 3600.0;
  for (allocator::InstanceHandle handle : plan.victims) {
    const InstanceEntry* entry = FindInstance(InstanceIdOf(handle));
    if (stat.instance_type.empty()) {
      const allocator::InstanceType* type =
          allocator_.FindInstanceType(entry->record->instance_type_id());
      stat.instance_type = type->name.empty() ? type->id : type->name;
    }
    v1::Instance record = *entry->record;
    *record.mutable_preemption() = preemption;
    SetInterfaceStatuses(v1::INSTANCE_STATUS_TERMINATING, &record);
    AppendStatus(now, v1::INSTANCE_STATUS_TERMINATING,
                 absl::StrCat("PREEMPTED: its machines are needed by an on-demand request (",
                              preemption.preemptor_batch_id().empty()
                                  ? absl::StrCat("instance ", preemption.preemptor_instance_id())
                                  : absl::StrCat("batch ", preemption.preemptor_batch_id()),
                              "); release it by ",
                              absl::FormatTime(absl::RFC3339_sec,
                                               absl::FromUnixMicros(ToUnixMicros(preemption.preemption_deadline())),
                                               absl::UTCTimeZone()),
                              ", or nvlsched releases it then"),
                 &record);
    PutInstance(std::move(record), handle, entry->whole_machine);
  }
  stat.journal_position = journal_.size();
  preemptions_.push_back(std::move(stat));
}

std::optional<absl::Time> State::NextPreemptionDeadline() const {
  if (preemption_deadlines_.empty()) return std::nullopt;
  return absl::FromUnixMicros(preemption_deadlines_.begin()->first);
}

int State::ReleaseOverduePreemptions(absl::Time now) {
  std::vector<std::string> ids;
  std::vector<allocator::InstanceHandle> handles;
  const int64_t now_micros = absl::ToUnixMicros(now);
  for (const auto& [deadline, id] : preemption_deadlines_) {
    if (deadline > now_micros) break;
    ids.push_back(id);
    handles.push_back(FindInstance(id)->handle);
  }
  if (ids.empty()) return 0;
  absl::StatusOr<allocator::ReleasePlan> plan =
      allocator_.PlanRelease(handles, /*machine_health_issue=*/false, require_cleaning_);
  // Every handle is a live claim of a record here (RestoreInstance keeps them together).
  assert(plan.ok());
  const std::vector<allocator::Machine> before = ApplyRelease(*plan, ids);
  for (const std::string& id : ids) {
    const InstanceEntry* entry = FindInstance(id);
    v1::Instance record = *entry->record;
    const std::string machine = record.machine_id();
    record.clear_machine_id();
    SetInterfaceStatuses(v1::INSTANCE_STATUS_TERMINATED, &record);
    AppendStatus(now, v1::INSTANCE_STATUS_TERMINATED,
                 absl::StrCat("PREEMPTED: not released by its preemption deadline, so nvlsched "
                              "released machine ", machine,
                              " itself; delete the record to free its name"),
                 &record);
    PutInstance(std::move(record), allocator::InstanceHandle{}, entry->whole_machine);
  }
  RecordReleasedMachines(before);
  return static_cast<int>(ids.size());
}

// ------------------------------------------------------------------ The change record

State::JournalMark State::Mark() const {
  return JournalMark{allocator_.Mark(), journal_.size(), queue_.reservations()};
}

store::ChangeSet State::ChangesSince(const JournalMark& mark) const {
  // One set of keys per kind: a record changed twice is written once, as it is now.
  std::array<absl::btree_set<std::string>, kRecordKinds> touched;
  store::ChangeSet cs;
  for (size_t i = mark.records; i < journal_.size(); ++i) {
    const ChangeEntry& e = journal_[i];
    if (!touched[static_cast<int>(e.kind)].insert(e.key).second) continue;
    const std::string_view key(e.key);
    switch (e.kind) {
      case RecordKind::kInstanceType:
        if (const allocator::InstanceType* t = allocator_.FindInstanceType(key)) {
          cs.upsert_instance_types.push_back(ToRow(*t));
        }
        break;
      case RecordKind::kDomain:
        if (const allocator::Domain* d = allocator_.FindDomain(key)) {
          cs.upsert_domains.push_back(ToRow(*d));
        }
        break;
      case RecordKind::kMachine:
        if (const allocator::Machine* m = allocator_.FindMachine(key)) {
          cs.upsert_machines.push_back(ToRow(*m));
        } else {
          cs.delete_machine_ids.push_back(e.key);
        }
        break;
      case RecordKind::kTenant:
        if (const allocator::Tenant* t = allocator_.FindTenant(key)) {
          cs.upsert_tenants.push_back(ToRow(*t));
        }
        break;
      case RecordKind::kInstance:
        if (const InstanceEntry* instance = FindInstance(e.key)) {
          cs.upsert_instances.push_back(ToRow(*instance->record, instance->whole_machine));
        } else {
          cs.delete_instance_ids.push_back(e.key);
        }
        break;
      case RecordKind::kQueue:
        break;  // the queued records carry it
      case RecordKind::kFleetSettings:
        cs.put_meta.push_back(store::MetaRow{
            e.key, absl::StrCat(allocator_.default_spare_machines())});
        break;
      case RecordKind::kIdempotency: {
        auto it = idempotency_.find(e.key);
        if (it == idempotency_.end()) break;
        const size_t newline = e.key.find('\n');
        cs.put_idempotency.push_back(store::IdempotencyRow{
            e.key.substr(0, newline), e.key.substr(newline + 1), it->second.fingerprint,
            it->second.response, it->second.created_unix_micros});
        break;
      }
    }
  }
  return cs;
}

void State::RollbackTo(const JournalMark& mark) {
  while (journal_.size() > mark.records) {
    ChangeEntry& undo = journal_.back();
    if (undo.kind == RecordKind::kInstance) {
      RestoreInstance(undo.key, std::move(undo.previous_instance));
    } else if (undo.kind == RecordKind::kQueue) {
      const uint64_t sequence = std::stoull(undo.key);
      if (undo.previous_queued.has_value()) {
        queue_.Insert(allocator_, *std::move(undo.previous_queued));
        queued_ids_[sequence] = std::move(undo.previous_queued_ids);
      } else {
        queue_.Remove(sequence);
        queued_ids_.erase(sequence);
      }
    } else if (undo.kind == RecordKind::kIdempotency) {
      if (undo.previous_idempotency.has_value()) {
        idempotency_[undo.key] = *std::move(undo.previous_idempotency);
      } else {
        idempotency_.erase(undo.key);
      }
    }
    journal_.pop_back();
  }
  allocator_.RollbackTo(mark.allocator);
  queue_.RestoreReservations(mark.reservations);
  queue_changed_ = true;
  while (!preemptions_.empty() && preemptions_.back().journal_position > mark.records) {
    preemptions_.pop_back();
  }
}

void State::ChangedSince(const JournalMark& mark, std::vector<absl::string_view>* instance_ids,
                         std::vector<absl::string_view>* tenant_ids) const {
  absl::flat_hash_set<absl::string_view> seen_instances;
  absl::flat_hash_set<absl::string_view> seen_tenants;
  for (size_t i = mark.records; i < journal_.size(); ++i) {
    const ChangeEntry& e = journal_[i];
    if (e.kind == RecordKind::kInstance && seen_instances.insert(e.key).second) {
      instance_ids->push_back(e.key);
    } else if (e.kind == RecordKind::kTenant && seen_tenants.insert(e.key).second) {
      tenant_ids->push_back(e.key);
    }
  }
}

void State::ClearJournal() {
  journal_.clear();
  allocator_.ClearJournal();
}

}  // namespace nvlsched::daemon
