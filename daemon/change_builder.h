// ChangeBuilder: the rows a group of writes changed, in the order they changed them, folded
// into the store's net ChangeSet at commit time (an instance created and deleted in the same
// group is written as just a delete; a row changed twice is written once, as it ended).
//
// A Mark() / RollbackTo() pair drops what one failed op recorded.
//
// Thread-safety: not thread-safe; owned by the engine thread.
#ifndef NVLSCHED_DAEMON_CHANGE_BUILDER_H_
#define NVLSCHED_DAEMON_CHANGE_BUILDER_H_

#include <cstddef>
#include <string>
#include <variant>
#include <vector>

#include "store/rows.h"

namespace nvlsched::daemon {

class ChangeBuilder {
 public:
  void UpsertInstanceType(store::InstanceTypeRow row);
  void UpsertDomain(store::DomainRow row);
  void UpsertMachine(store::MachineRow row);
  void DeleteMachine(std::string id);
  void UpsertTenant(store::TenantRow row);
  void UpsertInstance(store::InstanceRow row);
  void DeleteInstance(std::string id);
  void PutIdempotency(store::IdempotencyRow row);
  void PutMeta(store::MetaRow row);

  bool empty() const { return entries_.empty(); }
  size_t Mark() const { return entries_.size(); }
  void RollbackTo(size_t mark) { entries_.resize(mark); }
  void Clear() { entries_.clear(); }

  // The net effect of everything recorded, in the store's form. Cost: O(entries · log entries).
  store::ChangeSet Build() const;

 private:
  struct DeleteMachineId { std::string id; };
  struct DeleteInstanceId { std::string id; };
  using Entry = std::variant<store::InstanceTypeRow, store::DomainRow, store::MachineRow,
                             DeleteMachineId, store::TenantRow, store::InstanceRow,
                             DeleteInstanceId, store::IdempotencyRow, store::MetaRow>;
  std::vector<Entry> entries_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_CHANGE_BUILDER_H_
