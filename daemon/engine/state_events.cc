// State::EventsSince: the events of the change record (state.h). Each change record entry
// holds the record's value before the change; the value after it is the next entry's "before"
// for the same record, or the record as it is now. So one backwards walk gives every change
// with both sides, and the events are derived from the same record as the rows and the undo.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "allocator/string_view_compat.h"
#include "daemon/api/convert.h"
#include "daemon/engine/instance_records.h"
#include "daemon/engine/state.h"
#include "daemon/engine/wire_format.h"

namespace nvlsched::daemon {
namespace {

std::string MachineStateWord(allocator::MachineState state) {
  switch (state) {
    case allocator::MachineState::kReady: return "READY";
    case allocator::MachineState::kMaintenance: return "MAINTENANCE";
    case allocator::MachineState::kError: return "ERROR";
    case allocator::MachineState::kCleaning: return "CLEANING";
  }
  return "?";
}

// The walk's view of one record: what it is after the entry being looked at.
template <typename T>
using AfterMap = absl::flat_hash_map<std::string, const T*>;

// One step of the backwards walk for one record kind: the record after this entry is the
// one the walk saw before it (or, the first time, the record as it is now: `find_now`), the
// record before it is the entry's saved value; then this entry's "before" becomes the "after"
// of the entry the walk meets next.
template <typename T, typename FindNow>
void StepBack(AfterMap<T>& after_map, const std::string& key, const std::optional<T>& previous,
              FindNow find_now, const T** before, const T** after,
              bool* after_is_current = nullptr) {
  auto found = after_map.find(key);
  const bool current = found == after_map.end();
  *after = current ? find_now(key) : found->second;
  if (after_is_current != nullptr) *after_is_current = current;
  *before = previous.has_value() ? &*previous : nullptr;
  after_map[key] = *before;
}

}  // namespace

std::vector<EncodedEvent> State::EventsSince(const JournalMark& mark, uint64_t first_sequence,
                                             absl::Time commit_time,
                                             const store::ChangeSet* rows) const {
  // One change as the backwards walk finds it; encoded afterwards, in order.
  struct Change {
    RecordKind kind;
    const InstanceEntry* instance_before = nullptr;
    const InstanceEntry* instance_after = nullptr;
    bool instance_after_is_current = false;  // instance_after is the record as it is now
    const allocator::Machine* machine_before = nullptr;
    const allocator::Machine* machine_after = nullptr;
    const allocator::Tenant* tenant_before = nullptr;
    const allocator::Tenant* tenant_after = nullptr;
    const allocator::Domain* domain_before = nullptr;
    const allocator::Domain* domain_after = nullptr;
  };
  std::vector<Change> changes;
  AfterMap<InstanceEntry> instances_after;
  AfterMap<allocator::Machine> machines_after;
  AfterMap<allocator::Tenant> tenants_after;
  AfterMap<allocator::Domain> domains_after;
  for (size_t i = journal_.size(); i > mark.records; --i) {
    const ChangeEntry& e = journal_[i - 1];
    Change c{e.kind};
    bool keep = false;
    switch (e.kind) {
      case RecordKind::kInstance:
        StepBack(instances_after, e.key, e.previous_instance,
                 [&](const std::string& id) { return FindInstance(id); },
                 &c.instance_before, &c.instance_after, &c.instance_after_is_current);
        keep = (c.instance_before != nullptr || c.instance_after != nullptr);
        break;
      case RecordKind::kMachine:
        StepBack(machines_after, e.key, e.previous_machine,
                 [&](const std::string& id) { return allocator_.FindMachine(id); },
                 &c.machine_before, &c.machine_after);
        keep = (c.machine_before != nullptr || c.machine_after != nullptr);
        break;
      case RecordKind::kTenant:  // tenants are never removed
        StepBack(tenants_after, e.key, e.previous_tenant,
                 [&](const std::string& id) { return allocator_.FindTenant(id); },
                 &c.tenant_before, &c.tenant_after);
        keep = c.tenant_after != nullptr;
        break;
      case RecordKind::kDomain:  // domains are never removed
        StepBack(domains_after, e.key, e.previous_domain,
                 [&](const std::string& id) { return allocator_.FindDomain(id); },
                 &c.domain_before, &c.domain_after);
        keep = c.domain_after != nullptr;
        break;
      case RecordKind::kInstanceType:
      case RecordKind::kIdempotency:
      case RecordKind::kQueue:
      case RecordKind::kFleetSettings:
        break;
    }
    if (!keep) continue;
    changes.push_back(c);
  }
  std::reverse(changes.begin(), changes.end());

  // The serialized records of the rows: an event of a record as it is now carries those bytes.
  absl::flat_hash_map<absl::string_view, const std::string*> row_bytes;
  if (rows != nullptr) {
    row_bytes.reserve(rows->upsert_instances.size());
    for (const store::InstanceRow& row : rows->upsert_instances) row_bytes[row.id] = &row.details;
  }

  const google::protobuf::Timestamp time = ToTimestamp(commit_time);
  std::vector<EncodedEvent> events;
  events.reserve(changes.size());
  for (const Change& c : changes) {
    v1::Event header;  // the event without its instance, which is appended serialized
    header.set_sequence(first_sequence + events.size());
    *header.mutable_time() = time;
    const RecordPtr* instance = nullptr;
    const std::string* instance_bytes = nullptr;  // `instance` serialized, when a row has it
    switch (c.kind) {
      case RecordKind::kInstance: {
        const InstanceEntry* after = c.instance_after;
        const InstanceEntry* before = c.instance_before;
        instance = after != nullptr ? &after->record : &before->record;
        const v1::Instance& record = **instance;
        if (after != nullptr && c.instance_after_is_current) {
          auto found = row_bytes.find(record.id());
          if (found != row_bytes.end()) instance_bytes = found->second;
        }
        const allocator::Tenant* tenant = allocator_.FindTenant(record.tenant_id());
        header.set_org(tenant == nullptr ? std::string() : tenant->org);
        header.set_tenant_id(record.tenant_id());
        header.set_batch_id(record.batch_id());
        const std::string last_message =
            record.status_history().empty()
                ? std::string()
                : record.status_history(record.status_history_size() - 1).message();
        if (before == nullptr) {
          header.set_type(v1::EVENT_TYPE_INSTANCE_CREATED);
          header.set_reason(last_message);
        } else if (after == nullptr) {
          header.set_type(v1::EVENT_TYPE_INSTANCE_DELETED);
          header.set_reason(record.machine_id().empty()
                                ? std::string(record.status() == v1::INSTANCE_STATUS_QUEUED
                                                  ? "deleted while queued; its request is cancelled"
                                                  : "deleted; it held no machine")
                                : absl::StrCat("deleted; machine ", record.machine_id(),
                                               " released"));
        } else {
          header.set_type(v1::EVENT_TYPE_INSTANCE_STATUS_CHANGED);
          header.set_reason(absl::StrCat("status ", StatusWord(before->record->status()), " -> ",
                                         StatusWord(record.status()),
                                         last_message.empty() ? "" : ": ", last_message));
        }
        break;
      }
      case RecordKind::kMachine: {
        const allocator::Machine* after = c.machine_after;
        const allocator::Machine* before = c.machine_before;
        const allocator::Machine& machine = after != nullptr ? *after : *before;
        *header.mutable_machine() = ToProto(machine);
        if (before == nullptr) {
          header.set_type(v1::EVENT_TYPE_MACHINE_ADDED);
          header.set_reason(absl::StrCat("added to NVLink domain ", machine.domain_id,
                                         " as tray ", machine.tray_index));
        } else if (after == nullptr) {
          header.set_type(v1::EVENT_TYPE_MACHINE_REMOVED);
          header.set_reason("removed from the inventory");
        } else {
          header.set_type(v1::EVENT_TYPE_MACHINE_STATE_CHANGED);
          // A wipe that starts or ends without CLEANING (a drained machine) says so.
          const bool says_it = before->wipe_pending != after->wipe_pending &&
                               before->state != allocator::MachineState::kCleaning &&
                               after->state != allocator::MachineState::kCleaning;
          const char* wipe = !says_it ? ""
                             : after->wipe_pending ? " (waits for a wipe: CompleteCleaning)"
                                                   : " (wiped)";
          header.set_reason(absl::StrCat(MachineStateWord(before->state), " -> ",
                                         MachineStateWord(after->state),
                                         after->state_reason.empty() ? "" : ": ",
                                         after->state_reason, wipe));
        }
        break;
      }
      case RecordKind::kTenant:
        *header.mutable_tenant() = ToProto(*c.tenant_after);
        header.set_type(v1::EVENT_TYPE_TENANT_CHANGED);
        header.set_org(c.tenant_after->org);
        header.set_tenant_id(c.tenant_after->id);
        header.set_reason(c.tenant_before == nullptr ? "tenant created"
                                                     : "tenant, its quotas or its priority updated");
        break;
      case RecordKind::kDomain: {
        const allocator::Domain* after = c.domain_after;
        const allocator::Domain* before = c.domain_before;
        // Configuration and health only: ToProto leaves the ListDomains counters at 0.
        *header.mutable_domain() = ToProto(*after);
        header.set_type(v1::EVENT_TYPE_DOMAIN_CHANGED);
        const absl::string_view now = allocator::AbslView(allocator::DomainStateName(after->state));
        if (before == nullptr) {
          header.set_reason(absl::StrCat("NVLink domain added",
                                         after->site_id.empty() ? "" : " at site ", after->site_id,
                                         " (", now, ")"));
        } else if (before->state != after->state || before->state_reason != after->state_reason) {
          header.set_reason(absl::StrCat(
              allocator::AbslView(allocator::DomainStateName(before->state)), " -> ", now,
              after->state_reason.empty() ? "" : ": ", after->state_reason));
        } else {
          header.set_reason("NVLink domain configuration updated");
        }
        break;
      }
      default:
        break;
    }
    EncodedEvent& out = events.emplace_back();
    out.sequence = header.sequence();
    out.type = static_cast<int32_t>(header.type());
    out.org = header.org();
    out.tenant_id = header.tenant_id();
    header.SerializeToString(&out.bytes);
    // The instance record is serialized straight into the event (the wire format lets a field
    // follow the others in any order), without building and destroying a copy of the event.
    if (instance_bytes != nullptr) {
      AppendLengthDelimitedField(v1::Event::kInstanceFieldNumber, *instance_bytes, &out.bytes);
    } else if (instance != nullptr) {
      instance->AppendAsField(v1::Event::kInstanceFieldNumber, &out.bytes);
    }
  }
  return events;
}

}  // namespace nvlsched::daemon
