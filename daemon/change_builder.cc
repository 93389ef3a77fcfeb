#include "daemon/change_builder.h"

#include <optional>
#include <utility>

#include "absl/container/btree_map.h"
#include "absl/strings/str_cat.h"

namespace nvlsched::daemon {
namespace {

// Last write wins per key; remembers the first position so the output order is the order in
// which rows were first touched (deterministic).
template <typename Row>
class NetRows {
 public:
  void Put(const std::string& key, std::optional<Row> row) {
    auto [it, inserted] = index_.try_emplace(key, rows_.size());
    if (inserted) {
      rows_.emplace_back(key, std::move(row));
    } else {
      rows_[it->second].second = std::move(row);
    }
  }
  // Upserts and deletes (nullopt) in first-touched order.
  const std::vector<std::pair<std::string, std::optional<Row>>>& rows() const { return rows_; }

 private:
  absl::btree_map<std::string, size_t> index_;
  std::vector<std::pair<std::string, std::optional<Row>>> rows_;
};

}  // namespace

void ChangeBuilder::UpsertInstanceType(store::InstanceTypeRow row) { entries_.emplace_back(std::move(row)); }
void ChangeBuilder::UpsertDomain(store::DomainRow row) { entries_.emplace_back(std::move(row)); }
void ChangeBuilder::UpsertMachine(store::MachineRow row) { entries_.emplace_back(std::move(row)); }
void ChangeBuilder::DeleteMachine(std::string id) { entries_.emplace_back(DeleteMachineId{std::move(id)}); }
void ChangeBuilder::UpsertTenant(store::TenantRow row) { entries_.emplace_back(std::move(row)); }
void ChangeBuilder::UpsertInstance(store::InstanceRow row) { entries_.emplace_back(std::move(row)); }
void ChangeBuilder::DeleteInstance(std::string id) { entries_.emplace_back(DeleteInstanceId{std::move(id)}); }
void ChangeBuilder::PutIdempotency(store::IdempotencyRow row) { entries_.emplace_back(std::move(row)); }
void ChangeBuilder::PutMeta(store::MetaRow row) { entries_.emplace_back(std::move(row)); }

store::ChangeSet ChangeBuilder::Build() const {
  NetRows<store::InstanceTypeRow> types;
  NetRows<store::DomainRow> domains;
  NetRows<store::MachineRow> machines;
  NetRows<store::TenantRow> tenants;
  NetRows<store::InstanceRow> instances;
  NetRows<store::IdempotencyRow> idempotency;
  NetRows<store::MetaRow> meta;

  for (const Entry& e : entries_) {
    if (auto* r = std::get_if<store::InstanceTypeRow>(&e)) types.Put(r->id, *r);
    else if (auto* r = std::get_if<store::DomainRow>(&e)) domains.Put(r->id, *r);
    else if (auto* r = std::get_if<store::MachineRow>(&e)) machines.Put(r->id, *r);
    else if (auto* r = std::get_if<DeleteMachineId>(&e)) machines.Put(r->id, std::nullopt);
    else if (auto* r = std::get_if<store::TenantRow>(&e)) tenants.Put(r->id, *r);
    else if (auto* r = std::get_if<store::InstanceRow>(&e)) instances.Put(r->id, *r);
    else if (auto* r = std::get_if<DeleteInstanceId>(&e)) instances.Put(r->id, std::nullopt);
    else if (auto* r = std::get_if<store::IdempotencyRow>(&e))
      idempotency.Put(absl::StrCat(r->tenant_id, "\n", r->request_id), *r);
    else if (auto* r = std::get_if<store::MetaRow>(&e)) meta.Put(r->key, *r);
  }

  store::ChangeSet cs;
  for (const auto& [k, r] : types.rows()) if (r) cs.upsert_instance_types.push_back(*r);
  for (const auto& [k, r] : domains.rows()) if (r) cs.upsert_domains.push_back(*r);
  for (const auto& [k, r] : machines.rows()) {
    if (r) cs.upsert_machines.push_back(*r); else cs.delete_machine_ids.push_back(k);
  }
  for (const auto& [k, r] : tenants.rows()) if (r) cs.upsert_tenants.push_back(*r);
  for (const auto& [k, r] : instances.rows()) {
    if (r) cs.upsert_instances.push_back(*r); else cs.delete_instance_ids.push_back(k);
  }
  for (const auto& [k, r] : idempotency.rows()) if (r) cs.put_idempotency.push_back(*r);
  for (const auto& [k, r] : meta.rows()) if (r) cs.put_meta.push_back(*r);
  return cs;
}

}  // namespace nvlsched::daemon
