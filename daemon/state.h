// State: everything nvlschedd knows at run time — the allocator (inventory and who holds
// what) plus the full record of every instance (its request fields, interfaces, status
// history) as the API shows it, the per-tenant name index and the idempotency records.
//
// The allocator names instances by allocator::InstanceHandle, not by id: each record here
// keeps its instance's handle, and State maps handles back to ids for the allocator's
// messages (its InstanceNamer) and for machine views.
//
// Every change is journaled, so the engine can put memory back exactly as it was before a
// group whose commit failed (Mark / RollbackTo), and forget the journal after a commit.
//
// Thread-safety: not thread-safe. Owned by the engine thread (daemon/engine.h).
#ifndef NVLSCHED_DAEMON_STATE_H_
#define NVLSCHED_DAEMON_STATE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "allocator/allocator.h"
#include "nvlsched/v1/resources.pb.h"

namespace nvlsched::daemon {

struct IdempotencyEntry {
  std::string fingerprint;  // hash of the request body
  std::string response;     // serialized response message
  int64_t created_unix_micros = 0;
};

class State {
 public:
  struct JournalMark {
    allocator::JournalMark allocator;
    size_t records = 0;
  };

  // One instance: its record as the API shows it, and the allocator's handle for it.
  struct InstanceEntry {
    v1::Instance record;
    allocator::InstanceHandle handle;
  };

  State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  allocator::Allocator& allocator() { return allocator_; }
  const allocator::Allocator& allocator() const { return allocator_; }

  // Instance records, ordered by id (stable pagination).
  const InstanceEntry* FindInstance(absl::string_view id) const;
  const absl::btree_map<std::string, InstanceEntry>& instances() const { return instances_; }
  // The id of the instance `handle` names; "" when no record has that handle.
  std::string InstanceIdOf(allocator::InstanceHandle handle) const;
  // Inserts or replaces the record and its handle (and its name in the tenant's name index).
  void PutInstance(v1::Instance instance, allocator::InstanceHandle handle);
  // REQUIRES: the record exists.
  void EraseInstance(absl::string_view id);
  bool NameTaken(absl::string_view tenant_id, absl::string_view name) const;

  const IdempotencyEntry* FindIdempotency(absl::string_view tenant_id,
                                          absl::string_view request_id) const;
  void PutIdempotency(absl::string_view tenant_id, absl::string_view request_id,
                      IdempotencyEntry entry);

  JournalMark Mark() const;
  // Undoes every change made since `mark`, newest first, in the allocator and the records.
  void RollbackTo(const JournalMark& mark);
  void ClearJournal();

 private:
  static std::string NameKey(absl::string_view tenant_id, absl::string_view name);
  static std::string IdempotencyKey(absl::string_view tenant_id, absl::string_view request_id);

  // An undo record: the previous value of one key (nullopt: the key did not exist).
  struct RecordUndo {
    std::string instance_id;  // empty for an idempotency undo
    std::optional<InstanceEntry> previous_instance;
    std::string idempotency_key;
    std::optional<IdempotencyEntry> previous_idempotency;
  };
  void RestoreInstance(const std::string& id, std::optional<InstanceEntry> previous);

  allocator::Allocator allocator_;
  absl::btree_map<std::string, InstanceEntry> instances_;
  // The id of each record's handle; kept with instances_ by RestoreInstance.
  absl::flat_hash_map<allocator::InstanceHandle, std::string> ids_by_handle_;
  absl::btree_set<std::string> names_;  // NameKey(tenant, name)
  absl::btree_map<std::string, IdempotencyEntry> idempotency_;
  std::vector<RecordUndo> journal_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_STATE_H_
