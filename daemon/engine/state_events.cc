// State::EventsSince: the events of the change record (state.h). Each change record entry
// holds the record's value before the change; the value after it is the next entry's "before"
// for the same record, or the record as it is now. So one backwards walk gives every change
// with both sides, and the events are derived from the same record as the rows and the undo.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "daemon/api/convert.h"
#include "daemon/engine/instance_records.h"
#include "daemon/engine/state.h"

namespace nvlsched::daemon {
namespace {

std::string MachineStateWord(allocator::MachineState state) {
  switch (state) {
    case allocator::MachineState::kReady: return "READY";
    case allocator::MachineState::kMaintenance: return "MAINTENANCE";
    case allocator::MachineState::kError: return "ERROR";
  }
  return "?";
}

// The walk's view of one record: what it is after the entry being looked at.
template <typename T>
using AfterMap = absl::flat_hash_map<std::string, const T*>;

}  // namespace

std::vector<v1::Event> State::EventsSince(const JournalMark& mark, uint64_t first_sequence,
                                          absl::Time commit_time) const {
  std::vector<v1::Event> events;
  AfterMap<InstanceEntry> instances_after;
  AfterMap<allocator::Machine> machines_after;
  AfterMap<allocator::Tenant> tenants_after;
  const google::protobuf::Timestamp time = ToTimestamp(commit_time);

  auto org_of = [this](const std::string& tenant_id) {
    const allocator::Tenant* tenant = allocator_.FindTenant(tenant_id);
    return tenant == nullptr ? std::string() : tenant->org;
  };

  for (size_t i = journal_.size(); i > mark.records; --i) {
    const ChangeEntry& e = journal_[i - 1];
    v1::Event event;
    switch (e.kind) {
      case RecordKind::kInstance: {
        auto found = instances_after.find(e.key);
        const InstanceEntry* after =
            found != instances_after.end() ? found->second : FindInstance(e.key);
        const InstanceEntry* before =
            e.previous_instance.has_value() ? &*e.previous_instance : nullptr;
        instances_after[e.key] = before;
        if (before == nullptr && after == nullptr) continue;
        const v1::Instance& record = after != nullptr ? after->record : before->record;
        *event.mutable_instance() = record;
        event.set_org(org_of(record.tenant_id()));
        event.set_tenant_id(record.tenant_id());
        event.set_batch_id(record.batch_id());
        const std::string last_message =
            record.status_history().empty()
                ? std::string()
                : record.status_history(record.status_history_size() - 1).message();
        if (before == nullptr) {
          event.set_type(v1::EVENT_TYPE_INSTANCE_CREATED);
          event.set_reason(last_message);
        } else if (after == nullptr) {
          event.set_type(v1::EVENT_TYPE_INSTANCE_DELETED);
          event.set_reason(absl::StrCat("deleted; machine ", record.machine_id(), " released"));
        } else {
          event.set_type(v1::EVENT_TYPE_INSTANCE_STATUS_CHANGED);
          event.set_reason(absl::StrCat("status ", StatusWord(before->record.status()), " -> ",
                                        StatusWord(record.status()),
                                        last_message.empty() ? "" : ": ", last_message));
        }
        break;
      }
      case RecordKind::kMachine: {
        auto found = machines_after.find(e.key);
        const allocator::Machine* after =
            found != machines_after.end() ? found->second : allocator_.FindMachine(e.key);
        const allocator::Machine* before =
            e.previous_machine.has_value() ? &*e.previous_machine : nullptr;
        machines_after[e.key] = before;
        if (before == nullptr && after == nullptr) continue;
        const allocator::Machine& machine = after != nullptr ? *after : *before;
        *event.mutable_machine() = ToProto(machine);
        if (before == nullptr) {
          event.set_type(v1::EVENT_TYPE_MACHINE_ADDED);
          event.set_reason(absl::StrCat("added to NVLink domain ", machine.domain_id, " as tray ",
                                        machine.tray_index));
        } else if (after == nullptr) {
          event.set_type(v1::EVENT_TYPE_MACHINE_REMOVED);
          event.set_reason("removed from the inventory");
        } else {
          event.set_type(v1::EVENT_TYPE_MACHINE_STATE_CHANGED);
          event.set_reason(absl::StrCat(MachineStateWord(before->state), " -> ",
                                        MachineStateWord(after->state),
                                        after->state_reason.empty() ? "" : ": ",
                                        after->state_reason));
        }
        break;
      }
      case RecordKind::kTenant: {
        auto found = tenants_after.find(e.key);
        const allocator::Tenant* after =
            found != tenants_after.end() ? found->second : allocator_.FindTenant(e.key);
        const allocator::Tenant* before =
            e.previous_tenant.has_value() ? &*e.previous_tenant : nullptr;
        tenants_after[e.key] = before;
        if (after == nullptr) continue;
        *event.mutable_tenant() = ToProto(*after);
        event.set_type(v1::EVENT_TYPE_TENANT_CHANGED);
        event.set_org(after->org);
        event.set_tenant_id(after->id);
        event.set_reason(before == nullptr ? "tenant created" : "tenant or its quotas updated");
        break;
      }
      case RecordKind::kInstanceType:
      case RecordKind::kDomain:
      case RecordKind::kIdempotency:
        continue;
    }
    *event.mutable_time() = time;
    events.push_back(std::move(event));
  }
  std::reverse(events.begin(), events.end());
  for (size_t i = 0; i < events.size(); ++i) events[i].set_sequence(first_sequence + i);
  return events;
}

}  // namespace nvlsched::daemon
