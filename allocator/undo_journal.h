// UndoJournal: inverse records of every mutation since the last ClearJournal, so the
// daemon's engine can put memory back exactly as it was when a group commit to SQLite
// fails (Allocator::Mark / RollbackTo / ClearJournal).
//
// Records are plain structs in a reused vector — no std::function, no allocation once the
// vector has grown to a group's size. A record names what changed by index; inventory
// changes also save the previous boundary struct in a side table (those paths allocate
// anyway). Placement records need nothing saved: a released claim or finished batch keeps
// its data in its slot, and slots are reused last-in first-out, so undoing in reverse order
// finds every slot exactly where it was. (A claim slot's generation is the one thing undo
// does not lower, on purpose: see InstanceHandle.)
//
// Thread-safety: not synchronized; owned by Allocator.
#ifndef NVLSCHED_ALLOCATOR_UNDO_JOURNAL_H_
#define NVLSCHED_ALLOCATOR_UNDO_JOURNAL_H_

#include <cassert>
#include <cstdint>
#include <vector>

#include "allocator/model.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

enum class UndoKind : uint8_t {
  kTypeAdded,       // index: type        -> remove it (it is the last)
  kTypeChanged,     // index: type        -> restore saved InstanceType
  kDomainAdded,     // index: domain      -> remove it (it is the last)
  kDomainChanged,   // index: domain      -> restore saved Domain
  kMachineAdded,    // index: machine     -> unlink it and free its slot
  kMachineChanged,  // index: machine     -> restore saved Machine (state, labels, placement)
  kMachineRemoved,  // index: machine     -> take its slot back and link it again
  kTenantAdded,     // index: tenant      -> remove it (it is the last)
  kTenantChanged,   // index: tenant      -> restore saved Tenant
  kClaimAdded,      // index: claim       -> detach it and free its slot
  kClaimReleased,   // index: claim       -> take its slot back and attach it again
  kBatchAdded,      // index: batch       -> free its slot (its claims are undone already)
  kBatchReleased,   // index: batch       -> take its slot back (before its last claim)
  kClaimPreempted,  // index: claim       -> no longer preempted (reclaimable again)
  kClaimMoved,      // index: claim       -> back to the saved machine (PopSavedMachineIndex)
  kDefaultSparesChanged,  // index: the previous fleet default spare_machines -> restore it
};

struct UndoRecord {
  UndoKind kind = UndoKind::kClaimAdded;
  uint32_t index = 0;
};

class UndoJournal {
 public:
  // Cost: O(1) and inline, twice per placed instance; no allocation once capacity covers a
  // commit group. Fields are stored one by one: a record built on the stack and copied in
  // whole costs a store-forwarding stall.
  void Push(UndoKind kind, uint32_t index) {
    if (size_ == capacity_) Grow();
    UndoRecord& record = records_[size_++];
    record.kind = kind;
    record.index = index;
  }

  // Appends n records for the caller to fill in (kind and index of each), for loops that
  // journal one record per item: one capacity check instead of n. The pointer is valid
  // until the next Push or Append.
  UndoRecord* Append(size_t n) {
    while (size_ + n > capacity_) Grow();
    UndoRecord* first = records_.data() + size_;
    size_ += n;
    return first;
  }

  // Inventory changes save the previous value, then Push the matching *Changed record.
  void Save(const InstanceType& spec) { saved_types_.push_back(spec); }
  void Save(const Domain& spec) { saved_domains_.push_back(spec); }
  void Save(const Machine& spec) { saved_machines_.push_back(spec); }
  void Save(const Tenant& spec) { saved_tenants_.push_back(spec); }
  void SaveMachineIndex(MachineIndex m) { saved_machine_indices_.push_back(m); }

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  uint64_t epoch() const { return epoch_; }

  UndoRecord PopRecord() {
    assert(size_ > 0);
    return records_[--size_];
  }
  // The value saved for the record just popped (saved values are LIFO like records).
  InstanceType PopSavedType() { return PopBack(saved_types_); }
  Domain PopSavedDomain() { return PopBack(saved_domains_); }
  Machine PopSavedMachine() { return PopBack(saved_machines_); }
  Tenant PopSavedTenant() { return PopBack(saved_tenants_); }
  MachineIndex PopSavedMachineIndex() { return PopBack(saved_machine_indices_); }

  // Forgets everything; keeps the record storage. Marks taken before are stale.
  void Clear() {
    size_ = 0;
    saved_types_.clear();
    saved_domains_.clear();
    saved_machines_.clear();
    saved_tenants_.clear();
    saved_machine_indices_.clear();
    ++epoch_;
  }

 private:
  void Grow() {
    records_.resize(capacity_ == 0 ? 64 : 2 * capacity_);
    capacity_ = records_.size();
  }

  template <typename T>
  static T PopBack(std::vector<T>& saved) {
    assert(!saved.empty());
    T value = std::move(saved.back());
    saved.pop_back();
    return value;
  }

  std::vector<UndoRecord> records_;  // [0, size_) in use; the rest is spare capacity
  size_t size_ = 0;
  size_t capacity_ = 0;  // records_.size(), kept here so Push needs no division
  std::vector<InstanceType> saved_types_;
  std::vector<Domain> saved_domains_;
  std::vector<Machine> saved_machines_;
  std::vector<Tenant> saved_tenants_;
  std::vector<MachineIndex> saved_machine_indices_;
  uint64_t epoch_ = 0;
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_UNDO_JOURNAL_H_
