#include "daemon/engine/instance_view.h"

#include <utility>
#include <vector>

#include "allocator/string_view_compat.h"
#include "daemon/api/page_tokens.h"

namespace nvlsched::daemon {
namespace {

constexpr int kDefaultPageSize = 100;  // as the engine's ListInstances

}  // namespace

uint32_t InstanceView::SlotOf(absl::string_view tenant_id) {
  auto [it, inserted] =
      slot_of_tenant_.try_emplace(tenant_id, static_cast<uint32_t>(tenants_.size()));
  if (inserted) tenants_.push_back(Tenant{std::string(tenant_id), std::nullopt, 0});
  return it->second;
}

void InstanceView::Put(absl::string_view id, RecordPtr record, std::vector<RecordPtr>* released) {
  auto it = instances_.find(id);
  if (it != instances_.end()) {
    --tenants_[it->second.tenant].records;
    released->push_back(std::move(it->second.record));
    if (record == nullptr) {
      instances_.erase(it);
      return;
    }
  }
  if (record == nullptr) return;
  const uint32_t slot = SlotOf(record.tenant_id());
  ++tenants_[slot].records;
  if (it != instances_.end()) {
    it->second = Entry{std::move(record), slot};
  } else {
    instances_.emplace(std::string(id), Entry{std::move(record), slot});
  }
}

void InstanceView::PublishAll(const State& state) {
  std::vector<const allocator::Tenant*> fleet_tenants;
  state.allocator().ForEachTenant(
      [&](const allocator::Tenant& tenant) { fleet_tenants.push_back(&tenant); });
  std::vector<RecordPtr> released;
  {
    WriterMutexLock lock(&mu_);
    for (auto& [id, entry] : instances_) released.push_back(std::move(entry.record));
    instances_.clear();
    tenants_.clear();
    slot_of_tenant_.clear();
    for (const allocator::Tenant* tenant : fleet_tenants) {
      tenants_[SlotOf(tenant->id)].org = tenant->org;
    }
    for (const auto& [id, entry] : state.instances()) {  // in id order
      const uint32_t slot = SlotOf(entry.record.tenant_id());
      ++tenants_[slot].records;
      instances_.emplace_hint(instances_.end(), id, Entry{entry.record, slot});
    }
  }
}

void InstanceView::Publish(const State& state, const State::JournalMark& mark) {
  std::vector<absl::string_view> instance_ids;
  std::vector<absl::string_view> tenant_ids;
  state.ChangedSince(mark, &instance_ids, &tenant_ids);
  if (instance_ids.empty() && tenant_ids.empty()) return;
  // Gathered before the lock: the lock is held only to swap pointers.
  std::vector<RecordPtr> records(instance_ids.size());
  for (size_t i = 0; i < instance_ids.size(); ++i) {
    if (const State::InstanceEntry* entry = state.FindInstance(instance_ids[i])) {
      records[i] = entry->record;
    }
  }
  std::vector<const allocator::Tenant*> tenants(tenant_ids.size());
  for (size_t i = 0; i < tenant_ids.size(); ++i) {
    tenants[i] = state.allocator().FindTenant(allocator::StdView(tenant_ids[i]));
  }
  // The records replaced are released after the lock.
  std::vector<RecordPtr> released;
  released.reserve(instance_ids.size());
  {
    WriterMutexLock lock(&mu_);
    for (size_t i = 0; i < instance_ids.size(); ++i) {
      Put(instance_ids[i], std::move(records[i]), &released);
    }
    for (size_t i = 0; i < tenant_ids.size(); ++i) {
      Tenant& tenant = tenants_[SlotOf(tenant_ids[i])];
      if (tenants[i] == nullptr) {
        tenant.org.reset();
      } else {
        tenant.org = tenants[i]->org;
      }
    }
  }
}

absl::Status InstanceView::List(const InstanceQuery& req, std::string* wire) const {
  const size_t page_size = static_cast<size_t>(req.page_size > 0 ? req.page_size : kDefaultPageSize);
  // batch_id and labels are in the records: with either, every record is looked at (for the
  // count); without them, a tenant's slot decides, and the count is the tenants' counts.
  const bool record_filters = !req.batch_id.empty() || !req.labels.empty();
  std::vector<RecordPtr> page;
  page.reserve(page_size);
  std::string next_after;
  int64_t total = 0;
  {
    ReaderMutexLock lock(&mu_);
    std::vector<char> in_query(tenants_.size(), 0);
    for (size_t slot = 0; slot < tenants_.size(); ++slot) {
      const Tenant& t = tenants_[slot];
      if (!t.org.has_value() || *t.org != req.org) continue;
      if (!req.tenant_id.empty() && t.id != req.tenant_id) continue;
      in_query[slot] = 1;
      if (!record_filters) total += t.records;
    }
    auto matches = [&](const Entry& entry) {
      if (!in_query[entry.tenant]) return false;
      if (!record_filters) return true;
      const RecordPtr& record = entry.record;
      // Only fields a loaded record keeps unparsed (record_ptr.h), so a walk parses nothing.
      if (!req.batch_id.empty() && record.batch_id() != req.batch_id) return false;
      for (const auto& [k, v] : req.labels) {
        if (!record.HasLabel(k, v)) return false;
      }
      return true;
    };
    const std::string* last_in_page = nullptr;  // a key of instances_, read under the lock
    // With record filters the count needs the entries before the token too.
    auto it = record_filters || req.after.empty() ? instances_.begin()
                                                  : instances_.upper_bound(req.after);
    for (; it != instances_.end(); ++it) {
      if (!matches(it->second)) continue;
      if (record_filters) {
        ++total;
        if (!req.after.empty() && it->first <= req.after) continue;
      }
      if (page.size() < page_size) {
        page.push_back(it->second.record);
        last_in_page = &it->first;
      } else if (next_after.empty()) {
        next_after = *last_in_page;
        if (!record_filters) break;  // the count is known already
      }
    }
  }
  // The records as field 1 (instances), in page order; then the other fields, serialized by
  // a message holding only them: the fields in field-number order, as protobuf writes them.
  wire->clear();
  for (const RecordPtr& record : page) {
    record.AppendAsField(v1::ListInstancesResponse::kInstancesFieldNumber, wire);
  }
  v1::ListInstancesResponse rest;
  if (!next_after.empty()) rest.set_next_page_token(EncodePageToken(next_after));
  rest.set_total_size(static_cast<int32_t>(total));
  if (!rest.AppendToString(wire)) {
    return absl::InternalError("ListInstances: the answer does not serialize");
  }
  return absl::OkStatus();
}

absl::Status InstanceView::List(const InstanceQuery& req, v1::ListInstancesResponse* resp) const {
  std::string wire;
  if (absl::Status s = List(req, &wire); !s.ok()) return s;
  if (!resp->ParseFromString(wire)) {
    return absl::InternalError("ListInstances: the answer's wire form does not parse");
  }
  return absl::OkStatus();
}

size_t InstanceView::size() const {
  ReaderMutexLock lock(&mu_);
  return instances_.size();
}

}  // namespace nvlsched::daemon
