// DomainSet: a set of dense domain indices that finds its smallest member (and the next
// member after a given one) in O(log64 n) — three word operations for up to 262,144
// domains, i.e. constant for any fleet we will run.
//
// It is a hierarchical bitmap: level 0 has one bit per domain, each higher level one bit
// per non-zero word of the level below, and the top level is a single word. It is what
// makes "ties broken by the lowest domain index" O(1) in BestFitDomainIndex and
// GpuGranularIndex, where a sorted container would cost O(log n) with allocation.
//
// Thread-safety: not synchronized; one owner.
// Memory: about n/8 bytes. Insert/Erase/First/Next never allocate; Reserve does.
#ifndef NVLSCHED_ALLOCATOR_DOMAIN_SET_H_
#define NVLSCHED_ALLOCATOR_DOMAIN_SET_H_

#include <cstdint>
#include <vector>

namespace nvlsched::allocator {

class DomainSet {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // Makes room for members 0..capacity-1, keeping current members. Never shrinks.
  // Cost: O(capacity / 64); allocates.
  void Reserve(uint32_t capacity);

  // REQUIRES: i < capacity(). Inserting a member or erasing a non-member is a no-op.
  void Insert(uint32_t i);
  void Erase(uint32_t i);
  bool Contains(uint32_t i) const;

  bool Empty() const { return size_ == 0; }
  uint32_t size() const { return size_; }
  uint32_t capacity() const { return capacity_; }

  // Smallest member, or kNone.
  uint32_t First() const;
  // Smallest member greater than `after`, or kNone.
  uint32_t Next(uint32_t after) const;

 private:
  // levels_[0] holds one bit per member; levels_.back() is a single word.
  std::vector<std::vector<uint64_t>> levels_;
  uint32_t capacity_ = 0;
  uint32_t size_ = 0;
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_DOMAIN_SET_H_
