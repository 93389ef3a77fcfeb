#include "daemon/engine/instance_view.h"

#include <utility>
#include <vector>

#include "allocator/string_view_compat.h"
#include "daemon/api/page_tokens.h"

namespace nvlsched::daemon {
namespace {

constexpr int kDefaultPageSize = 100;  // as the engine's ListInstances

}  // namespace

void InstanceView::PublishAll(const State& state) {
  absl::btree_map<std::string, RecordPtr> instances;
  for (const auto& [id, entry] : state.instances()) {
    instances.emplace_hint(instances.end(), id, entry.record);  // already in id order
  }
  absl::flat_hash_map<std::string, std::string> orgs;
  state.allocator().ForEachTenant(
      [&](const allocator::Tenant& tenant) { orgs.emplace(tenant.id, tenant.org); });
  WriterMutexLock lock(&mu_);
  instances_.swap(instances);
  org_of_tenant_.swap(orgs);
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
  std::vector<RecordPtr> replaced;
  replaced.reserve(instance_ids.size());
  {
    WriterMutexLock lock(&mu_);
    for (size_t i = 0; i < instance_ids.size(); ++i) {
      auto it = instances_.find(instance_ids[i]);
      if (records[i] == nullptr) {
        if (it != instances_.end()) {
          replaced.push_back(std::move(it->second));
          instances_.erase(it);
        }
      } else if (it != instances_.end()) {
        replaced.push_back(std::exchange(it->second, std::move(records[i])));
      } else {
        instances_.emplace(std::string(instance_ids[i]), std::move(records[i]));
      }
    }
    for (size_t i = 0; i < tenant_ids.size(); ++i) {
      if (tenants[i] == nullptr) {
        org_of_tenant_.erase(tenant_ids[i]);
      } else {
        org_of_tenant_[tenant_ids[i]] = tenants[i]->org;
      }
    }
  }
}

absl::Status InstanceView::List(const InstanceQuery& req, v1::ListInstancesResponse* resp) const {
  const size_t page_size = static_cast<size_t>(req.page_size > 0 ? req.page_size : kDefaultPageSize);
  std::vector<RecordPtr> page;
  page.reserve(page_size);
  std::string next_after;
  const std::string* last_in_page = nullptr;  // a key of instances_, read under the lock
  int total = 0;
  {
    ReaderMutexLock lock(&mu_);
    for (const auto& [id, record] : instances_) {
      // Only fields a loaded record keeps unparsed (record_ptr.h), so a walk parses nothing.
      const absl::string_view tenant_id = record.tenant_id();
      if (!req.tenant_id.empty() && tenant_id != req.tenant_id) continue;
      if (!req.batch_id.empty() && record.batch_id() != req.batch_id) continue;
      auto org = org_of_tenant_.find(tenant_id);
      if (org == org_of_tenant_.end() || org->second != req.org) continue;
      bool labels_match = true;
      for (const auto& [k, v] : req.labels) {
        if (!record.HasLabel(k, v)) labels_match = false;
      }
      if (!labels_match) continue;
      ++total;
      if (!req.after.empty() && id <= req.after) continue;
      if (page.size() < page_size) {
        page.push_back(record);
        last_in_page = &id;
      } else if (next_after.empty()) {
        next_after = *last_in_page;
      }
    }
  }
  for (const RecordPtr& record : page) record.CopyTo(resp->add_instances());
  if (!next_after.empty()) resp->set_next_page_token(EncodePageToken(next_after));
  resp->set_total_size(total);
  return absl::OkStatus();
}

size_t InstanceView::size() const {
  ReaderMutexLock lock(&mu_);
  return instances_.size();
}

}  // namespace nvlsched::daemon
