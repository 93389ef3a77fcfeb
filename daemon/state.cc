#include "daemon/state.h"

#include <utility>

#include "absl/strings/str_cat.h"

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

void State::RestoreInstance(const std::string& id, std::optional<InstanceEntry> previous) {
  auto it = instances_.find(id);
  if (it != instances_.end()) {
    names_.erase(NameKey(it->second.record.tenant_id(), it->second.record.name()));
    ids_by_handle_.erase(it->second.handle);
    instances_.erase(it);
  }
  if (previous.has_value()) {
    names_.insert(NameKey(previous->record.tenant_id(), previous->record.name()));
    ids_by_handle_[previous->handle] = id;
    instances_.emplace(id, *std::move(previous));
  }
}

void State::PutInstance(v1::Instance instance, allocator::InstanceHandle handle) {
  std::string id = instance.id();
  auto it = instances_.find(id);
  RecordUndo undo;
  undo.instance_id = id;
  if (it != instances_.end()) undo.previous_instance = it->second;
  journal_.push_back(std::move(undo));
  RestoreInstance(id, InstanceEntry{std::move(instance), handle});
}

void State::EraseInstance(absl::string_view id) {
  auto it = instances_.find(id);
  if (it == instances_.end()) return;
  RecordUndo undo;
  undo.instance_id = std::string(id);
  undo.previous_instance = it->second;
  journal_.push_back(std::move(undo));
  RestoreInstance(std::string(id), std::nullopt);
}

const IdempotencyEntry* State::FindIdempotency(absl::string_view tenant_id,
                                               absl::string_view request_id) const {
  auto it = idempotency_.find(IdempotencyKey(tenant_id, request_id));
  return it == idempotency_.end() ? nullptr : &it->second;
}

void State::PutIdempotency(absl::string_view tenant_id, absl::string_view request_id,
                           IdempotencyEntry entry) {
  std::string key = IdempotencyKey(tenant_id, request_id);
  RecordUndo undo;
  undo.idempotency_key = key;
  auto it = idempotency_.find(key);
  if (it != idempotency_.end()) undo.previous_idempotency = it->second;
  journal_.push_back(std::move(undo));
  idempotency_[key] = std::move(entry);
}

State::JournalMark State::Mark() const {
  return JournalMark{allocator_.Mark(), journal_.size()};
}

void State::RollbackTo(const JournalMark& mark) {
  while (journal_.size() > mark.records) {
    RecordUndo& undo = journal_.back();
    if (!undo.instance_id.empty()) {
      RestoreInstance(undo.instance_id, std::move(undo.previous_instance));
    } else if (undo.previous_idempotency.has_value()) {
      idempotency_[undo.idempotency_key] = *std::move(undo.previous_idempotency);
    } else {
      idempotency_.erase(undo.idempotency_key);
    }
    journal_.pop_back();
  }
  allocator_.RollbackTo(mark.allocator);
}

void State::ClearJournal() {
  journal_.clear();
  allocator_.ClearJournal();
}

}  // namespace nvlsched::daemon
