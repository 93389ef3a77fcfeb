// State: everything nvlschedd knows at run time — the allocator (inventory and who holds
// what) plus the full record of every instance (its request fields, interfaces, status
// history) as the API shows it, the per-tenant name index and the idempotency records.
//
// The allocator names instances by allocator::InstanceHandle, not by id: each record here
// keeps its instance's handle, and State maps handles back to ids for the allocator's
// messages (its InstanceNamer) and for machine views.
//
// One record of each change (LevelDB's WriteBatch: the log record is also the memtable's
// input). Ops change State only through the methods under "Changes" below; each writes one
// entry to the change record, naming the record it changed and what it was before. From that
// one record the engine derives both
//   - the rows a group commits: ChangesSince(mark), the net rows of every record changed since
//     the mark, read from State as it is now (a row changed twice is written once, as it
//     ended; an instance created and deleted in one group is written as a delete), and
//   - the undo of a group whose commit failed: RollbackTo(mark), newest entry first, with the
//     allocator's own journal undoing inventory and claims.
// Nothing else writes rows or undo records by hand.
//
// Thread-safety: not thread-safe. Owned by the engine thread (daemon/engine/engine.h).
#ifndef NVLSCHED_DAEMON_ENGINE_STATE_H_
#define NVLSCHED_DAEMON_ENGINE_STATE_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "allocator/allocator.h"
#include "allocator/gang_queue.h"
#include "absl/time/time.h"
#include "daemon/engine/encoded_event.h"
#include "daemon/engine/record_ptr.h"
#include "nvlsched/v1/event_service.pb.h"
#include "nvlsched/v1/resources.pb.h"
#include "store/rows.h"

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
    // The queue's reservations are derived by each pass, not journaled: a rollback restores
    // the ones in force at the mark.
    std::vector<allocator::Reservation> reservations;
  };

  // What one pass of the queue did (RunQueue).
  struct QueuePass {
    int placed = 0;
    int expired = 0;
    std::vector<absl::Duration> waits;  // of the requests placed
    // Of the preemptors placed (pinned requests): from their preemption to their placement.
    std::vector<absl::Duration> preemptor_waits;
    int preemptions_released = 0;  // preempted instances released at their deadline
  };

  // One preemption decision, for the metrics (TakePreemptions).
  struct PreemptionStat {
    std::string instance_type;  // the type's name
    int victims = 0;            // instances
    int gangs = 0;              // spot batches and singles
    double gpu_hours = 0;       // spot GPU-hours the victims had run
    size_t journal_position = 0;
  };

  // One instance: its record as the API shows it, the allocator's handle for it, and whether
  // it holds its machine whole (a batch member or whole-machine single) or some of its GPUs.
  struct InstanceEntry {
    // Immutable once stored: a change stores a new record (PutInstance), so a reader holding
    // this pointer (the read view, instance_view.h) keeps the record as it was committed.
    RecordPtr record;
    allocator::InstanceHandle handle;
    bool whole_machine = true;
  };

  // One record loaded at start-up (LoadInstances).
  struct LoadedInstance {
    std::string id;  // moved from
    RecordPtr record;
    allocator::InstanceHandle handle;  // the default (none) for a terminated record
    bool whole_machine = true;
    std::optional<int64_t> preemption_deadline;  // unix micros, when the record has one
  };

  State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  // The key of an instance name in the tenant's name index.
  static std::string NameKey(absl::string_view tenant_id, absl::string_view name);

  // Reads of the inventory and claims. The mutable form is for loading State at start-up and
  // for tests; ops change State through the methods under "Changes".
  allocator::Allocator& allocator() { return allocator_; }
  const allocator::Allocator& allocator() const { return allocator_; }

  // Instance records, ordered by id (stable pagination).
  const InstanceEntry* FindInstance(absl::string_view id) const;
  const absl::btree_map<std::string, InstanceEntry>& instances() const { return instances_; }
  // The id of the instance `handle` names; "" when no record has that handle.
  std::string InstanceIdOf(allocator::InstanceHandle handle) const;
  bool NameTaken(absl::string_view tenant_id, absl::string_view name) const;
  const IdempotencyEntry* FindIdempotency(absl::string_view tenant_id,
                                          absl::string_view request_id) const;

  // ---------------------------------------------------------------- Changes
  // Each writes one entry of the change record. The inventory methods return the allocator's
  // error and then change nothing.
  absl::Status UpsertInstanceType(const allocator::InstanceType& type);
  absl::Status UpsertDomain(const allocator::Domain& domain);
  // The fleet default of spare trays (Allocator::SetDefaultSpareMachines); stored in meta.
  absl::Status SetDefaultSpareMachines(int32_t spares);
  absl::Status SetDomainState(absl::string_view domain_id, allocator::DomainState state,
                              absl::string_view reason);
  absl::Status UpsertMachine(const allocator::Machine& machine);
  absl::Status SetMachineState(absl::string_view machine_id, allocator::MachineState state,
                               absl::string_view reason);
  absl::Status RemoveMachine(absl::string_view machine_id);
  absl::Status UpsertTenant(const allocator::Tenant& tenant);
  // Applies `placement` (allocator::Allocator::Apply) and records one instance per placed
  // instance: records[i] is placed at placement.instances[i]. REQUIRES: planned against the
  // current state; records.size() == placement.size().
  void PlaceInstances(const allocator::Placement& placement, absl::string_view batch_id,
                      absl::Span<v1::Instance> records);
  // Inserts or replaces the record (and its name in the tenant's name index).
  void PutInstance(v1::Instance instance, allocator::InstanceHandle handle,
                   bool whole_machine = true);
  // Start-up (LoadState): adds records in one go, without change records. REQUIRES: no
  // instance yet; ids strictly increasing (ids and records are moved from: State keeps those
  // very records); `names` the NameKey of each. The records go in by appends instead of a
  // random insert each. Reads no record's message.
  void LoadInstances(absl::Span<LoadedInstance> instances, absl::btree_set<std::string> names);

  // Moves an instance (allocator::Allocator::Apply(ReplacePlan)) and stores its new record
  // (same id, same handle); records the old machine if the move drained or parked it.
  void ReplaceInstance(const allocator::ReplacePlan& plan, v1::Instance record);
  // Erases the record (not its claim: ReleaseInstances does both). No-op for an unknown id.
  void EraseInstance(const std::string& id);
  // Releases the planned claims and erases their records (`ids`, one per claim of `plan`, in
  // its order). With the plan's machine_health_issue the machines, now in MAINTENANCE, are
  // recorded too. REQUIRES: planned against the current state.
  void ReleaseInstances(const allocator::ReleasePlan& plan, absl::Span<const std::string> ids);
  void PutIdempotency(absl::string_view tenant_id, absl::string_view request_id,
                      IdempotencyEntry entry);

  // ---------------------------------------------------------------- The queue
  // Requests waiting for capacity (allocator/gang_queue.h). Each is one batch or one single;
  // its instances are records here with status QUEUED and no machine (no handle).
  const allocator::GangQueue& queue() const { return queue_; }
  // Before anything is queued (start-up). max_timeout bounds a request's queue_timeout.
  void ConfigureQueue(allocator::GangQueue::Options options, absl::Duration max_timeout) {
    queue_ = allocator::GangQueue(options);
    max_queue_timeout_ = max_timeout;
  }
  absl::Duration max_queue_timeout() const { return max_queue_timeout_; }
  // A fresh arrival number (never reused while this State lives; LoadState resumes after the
  // largest one stored).
  uint64_t NextQueueSequence() { return next_queue_sequence_++; }
  void ResumeQueueSequencesAfter(uint64_t sequence) {
    next_queue_sequence_ = std::max(next_queue_sequence_, sequence + 1);
  }
  // The instance ids of a queued request, in batch order; nullptr when not queued.
  const std::vector<std::string>* QueuedIds(uint64_t sequence) const;
  // Queues `request` with its instance records (status QUEUED, no machine).
  void EnqueueInstances(allocator::QueuedRequest request, absl::Span<v1::Instance> records);
  // Cancels a queued request: takes it out of the queue and erases its records.
  void CancelQueued(uint64_t sequence);
  // One pass of the queue at `now`: places what fits (records QUEUED -> PENDING, with a
  // machine) and expires what waited past its deadline (-> TERMINATED, kept until deleted).
  QueuePass RunQueue(absl::Time now);
  // True when something changed since the last pass that a pass must see — capacity (a
  // release, a machine added, changed or removed), a tenant's quota, the queue — and there is
  // a queue or a reservation left over from the last one.
  bool queue_pass_due() const {
    return queue_changed_ && (!queue_.empty() || !queue_.reservations().empty());
  }

  // Whether a released machine goes to CLEANING until the control plane reports it wiped
  // (--require_cleaning; allocator::Allocator::PlanRelease's `clean`).
  void ConfigureCleaning(bool require_cleaning) { require_cleaning_ = require_cleaning; }
  bool require_cleaning() const { return require_cleaning_; }

  // ---------------------------------------------------------------- Preemption
  // How long a preempted spot instance has to be released (--preemption_grace).
  void ConfigurePreemption(absl::Duration grace) { preemption_grace_ = grace; }
  absl::Duration preemption_grace() const { return preemption_grace_; }
  // Marks the plan's victims preempted (allocator::Allocator::MarkPreempted) and moves their
  // records to TERMINATING with `preemption` (reason, times, preemptor). REQUIRES: planned
  // against the current state; `preemption` has its deadline.
  void PreemptInstances(const allocator::PreemptionPlan& plan, const v1::Preemption& preemption,
                        absl::Time now);
  // The earliest deadline of a preempted instance that still holds its machine.
  std::optional<absl::Time> NextPreemptionDeadline() const;
  // Releases every preempted instance whose deadline is at or before `now` (its record becomes
  // TERMINATED, holding nothing, kept until deleted). Returns how many.
  int ReleaseOverduePreemptions(absl::Time now);
  // The preemptions decided since the last call (and not rolled back), for the metrics.
  std::vector<PreemptionStat> TakePreemptions() { return std::exchange(preemptions_, {}); }

  // The event log's bounds: the oldest retained and the newest committed sequence (0 and 0
  // when there is none). Set at start-up and by the engine after each commit.
  uint64_t oldest_event() const { return oldest_event_; }
  uint64_t newest_event() const { return newest_event_; }
  void SetEventBounds(uint64_t oldest, uint64_t newest) {
    oldest_event_ = oldest;
    newest_event_ = newest;
  }

  // ---------------------------------------------------------------- The change record
  JournalMark Mark() const;
  // True when a change was recorded since `mark`.
  bool ChangedSince(const JournalMark& mark) const { return journal_.size() > mark.records; }
  // The net rows of every record changed since `mark`, in the order they were first changed.
  // Cost: O(entries · log entries) plus one row conversion per changed record.
  store::ChangeSet ChangesSince(const JournalMark& mark) const;
  // The ids of the instance records and of the tenants changed since `mark`, each once (for the
  // read view, instance_view.h). The views point into the change record: valid until the next
  // change or ClearJournal.
  void ChangedSince(const JournalMark& mark, std::vector<absl::string_view>* instance_ids,
                    std::vector<absl::string_view>* tenant_ids) const;
  // Undoes every change made since `mark`, newest first, in the allocator and the records.
  void RollbackTo(const JournalMark& mark);
  // Forgets the record (after a commit): later marks start from an empty record.
  void ClearJournal();

  // The events of every change recorded since `mark`, in the order made, sequence numbers
  // from `first_sequence` on, each carrying the object as that change left it, serialized
  // (defined in state_events.cc). Instance types and idempotency records make no events; a
  // domain makes one when added or changed (the counters ListDomains shows are not part of it). `rows`, if given, is ChangesSince(mark): an instance event of a record as it is now
  // carries its row's serialized record instead of serializing it again.
  // Cost: O(entries) plus one serialization of each changed object not in `rows`.
  std::vector<EncodedEvent> EventsSince(const JournalMark& mark, uint64_t first_sequence,
                                        absl::Time commit_time,
                                        const store::ChangeSet* rows = nullptr) const;

 private:
  enum class RecordKind : uint8_t {
    kInstanceType, kDomain, kMachine, kTenant, kInstance, kIdempotency, kQueue,
    kFleetSettings,  // key: the meta key (store::kDefaultSpareMachinesKey)
  };
  static constexpr int kRecordKinds = 8;
  // One entry of the change record: the record changed and, for the records State keeps
  // itself, its value before (nullopt: it did not exist). Inventory records are restored by
  // the allocator's journal.
  struct ChangeEntry {
    RecordKind kind;
    std::string key;  // the record's id; "<tenant>\n<request_id>" for idempotency
    std::optional<InstanceEntry> previous_instance{};
    std::optional<IdempotencyEntry> previous_idempotency{};
    // For events only (the allocator's journal undoes them): the record before the change.
    std::optional<allocator::Machine> previous_machine{};
    std::optional<allocator::Tenant> previous_tenant{};
    std::optional<allocator::Domain> previous_domain{};
    // kQueue (no rows, no events: the records of its instances carry both): the request as
    // it was before, with its instance ids; nullopt when it was just queued.
    std::optional<allocator::QueuedRequest> previous_queued{};
    std::vector<std::string> previous_queued_ids{};
  };

  static std::string IdempotencyKey(absl::string_view tenant_id, absl::string_view request_id);

  void Record(RecordKind kind, absl::string_view key) {
    journal_.push_back(ChangeEntry{kind, std::string(key)});
  }
  // Records a machine about to change, with its state before.
  void RecordMachine(absl::string_view machine_id, const allocator::Machine* before);
  void RestoreInstance(const std::string& id, std::optional<InstanceEntry> previous);
  // Takes the record out of instances_ and its indexes (moved, not copied); nullopt if none.
  std::optional<InstanceEntry> TakeInstance(const std::string& id);
  // Applies a release of the records `ids` (one per claim of `plan`; the records themselves
  // are the caller's to change) and returns their machines as they were before; the caller
  // then records those it drained or left CLEANING with RecordReleasedMachines.
  std::vector<allocator::Machine> ApplyRelease(const allocator::ReleasePlan& plan,
                                               absl::Span<const std::string> ids);
  void RecordReleasedMachines(absl::Span<const allocator::Machine> before);
  // Records a request just taken out of the queue, for the undo; returns its instance ids.
  std::vector<std::string> RecordDequeued(const allocator::QueuedRequest& request);

  allocator::Allocator allocator_;
  absl::btree_map<std::string, InstanceEntry> instances_;
  // The id of each record's handle; kept with instances_ by TakeInstance/RestoreInstance.
  absl::flat_hash_map<allocator::InstanceHandle, std::string> ids_by_handle_;
  absl::btree_set<std::string> names_;  // NameKey(tenant, name)
  absl::btree_map<std::string, IdempotencyEntry> idempotency_;
  allocator::GangQueue queue_;
  absl::flat_hash_map<uint64_t, std::vector<std::string>> queued_ids_;  // sequence -> ids
  uint64_t next_queue_sequence_ = 1;
  absl::Duration max_queue_timeout_ = absl::Hours(7 * 24);
  // See queue_pass_due(). Not journaled: a rollback sets it (conservative).
  bool queue_changed_ = true;
  std::vector<ChangeEntry> journal_;  // the change record since the last ClearJournal
  uint64_t oldest_event_ = 0;
  uint64_t newest_event_ = 0;
  absl::Duration preemption_grace_ = absl::Seconds(30);
  bool require_cleaning_ = false;  // the daemon sets it from --require_cleaning (default true)
  // (deadline, id) of every preempted instance that still holds its machine; kept by
  // TakeInstance/RestoreInstance, the one place every record change goes through.
  absl::btree_set<std::pair<int64_t, std::string>> preemption_deadlines_;
  std::vector<PreemptionStat> preemptions_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_STATE_H_
