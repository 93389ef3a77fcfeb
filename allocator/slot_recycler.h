// SlotRecycler: which slots of a table of records (StableVector or std::vector) can be
// reused.
//
// Released slots are not reusable at once: while the undo journal is open, a released
// record's data is exactly what RollbackTo puts back, so the slot is parked until
// Recycle() (called by Allocator::ClearJournal). Undo calls the Un* twins in reverse
// order, so both lists behave as exact stacks and a rollback finds every slot where it
// was. Reuse is last-in first-out, which keeps the hot path on warm cache lines and lets a
// reused batch slot keep its id string's buffer (no allocation).
//
// Thread-safety: not synchronized; owned by FleetState.
// Cost: all O(1) amortized; no allocation once the lists have grown.
#ifndef NVLSCHED_ALLOCATOR_SLOT_RECYCLER_H_
#define NVLSCHED_ALLOCATOR_SLOT_RECYCLER_H_

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nvlsched::allocator {

class SlotRecycler {
 public:
  // A slot to fill: the most recently recycled one, or a new one appended to `slots`.
  template <typename Table>
  uint32_t Allocate(Table& slots) {
    if (!free_.empty()) {
      uint32_t i = free_.back();
      free_.pop_back();
      return i;
    }
    slots.emplace_back();
    return static_cast<uint32_t>(slots.size() - 1);
  }
  // Undo of Allocate.
  void Unallocate(uint32_t i) { free_.push_back(i); }
  // The slot's record is dead; park it until Recycle.
  void Release(uint32_t i) { parked_.push_back(i); }
  // Undo of Release. REQUIRES: i is the last slot parked.
  void Unrelease(uint32_t i) {
    assert(!parked_.empty() && parked_.back() == i);
    (void)i;
    parked_.pop_back();
  }
  // Parked slots become reusable (the journal that could restore them is gone).
  void Recycle() {
    if (parked_.empty()) return;  // most commits release no machine and end no batch
    free_.insert(free_.end(), parked_.begin(), parked_.end());
    parked_.clear();
  }

  size_t free_count() const { return free_.size(); }
  size_t parked_count() const { return parked_.size(); }

 private:
  std::vector<uint32_t> free_;    // reusable now, LIFO
  std::vector<uint32_t> parked_;  // released since the last Recycle
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_SLOT_RECYCLER_H_
