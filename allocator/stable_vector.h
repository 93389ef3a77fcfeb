// StableVector<T>: a growable array whose elements never move. Elements live in chunks
// of 256; growing adds a chunk and never relocates existing ones. The id indexes key
// records by string_views into their own id strings, and Placements hand out views of
// machine and domain ids, so records must not move when the table grows.
//
// Unlike std::deque (which it replaces for this reason), indexing is a shift and a mask,
// not a division: it is on the hot path of every placement.
//
// Thread-safety: not synchronized. Cost: operator[] O(1); emplace_back amortized O(1),
// allocating one chunk per 256 elements; pop_back never frees a chunk.
#ifndef NVLSCHED_ALLOCATOR_STABLE_VECTOR_H_
#define NVLSCHED_ALLOCATOR_STABLE_VECTOR_H_

#include <cassert>
#include <cstddef>
#include <memory>
#include <new>
#include <vector>

namespace nvlsched::allocator {

template <typename T>
class StableVector {
 public:
  static constexpr size_t kChunkBits = 8;
  static constexpr size_t kChunkSize = size_t{1} << kChunkBits;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  T& operator[](size_t i) {
    assert(i < size_);
    return chunks_[i >> kChunkBits][i & (kChunkSize - 1)];
  }
  const T& operator[](size_t i) const {
    assert(i < size_);
    return chunks_[i >> kChunkBits][i & (kChunkSize - 1)];
  }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }

  // Appends a value-initialized element (reusing one left by pop_back if any).
  T& emplace_back() {
    if ((size_ >> kChunkBits) == chunks_.size()) {
      chunks_.push_back(std::make_unique<T[]>(kChunkSize));
    }
    T* slot = &chunks_[size_ >> kChunkBits][size_ & (kChunkSize - 1)];
    ++size_;
    // Destroy and construct rather than assign T(): assigning a temporary makes GCC 12 warn
    // (falsely) about copying the uninitialized inline storage of an empty InlinedVector.
    slot->~T();
    ::new (static_cast<void*>(slot)) T();
    return *slot;
  }
  void pop_back() {
    assert(size_ > 0);
    --size_;
  }

  template <typename Ref, typename Owner>
  class Iterator {
   public:
    Iterator(Owner* owner, size_t i) : owner_(owner), i_(i) {}
    Ref operator*() const { return (*owner_)[i_]; }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return i_ != other.i_; }

   private:
    Owner* owner_;
    size_t i_;
  };
  using iterator = Iterator<T&, StableVector>;
  using const_iterator = Iterator<const T&, const StableVector>;
  iterator begin() { return iterator(this, 0); }
  iterator end() { return iterator(this, size_); }
  const_iterator begin() const { return const_iterator(this, 0); }
  const_iterator end() const { return const_iterator(this, size_); }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  size_t size_ = 0;
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_STABLE_VECTOR_H_
