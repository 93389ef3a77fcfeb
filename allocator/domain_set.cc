#include "allocator/domain_set.h"

#include <cassert>
#include <cstddef>

namespace nvlsched::allocator {
namespace {

uint64_t Bit(uint32_t i) { return uint64_t{1} << (i & 63); }
uint32_t Ctz(uint64_t w) { return static_cast<uint32_t>(__builtin_ctzll(w)); }

}  // namespace

void DomainSet::Reserve(uint32_t capacity) {
  if (capacity <= capacity_) return;
  capacity_ = capacity;
  std::vector<uint64_t> leaves =
      levels_.empty() ? std::vector<uint64_t>() : std::move(levels_.front());
  leaves.resize((capacity + 63) / 64, 0);
  levels_.clear();
  levels_.push_back(std::move(leaves));
  // Rebuild the summary levels from the leaves; members are kept.
  while (levels_.back().size() > 1) {
    const std::vector<uint64_t>& below = levels_.back();
    std::vector<uint64_t> above((below.size() + 63) / 64, 0);
    for (uint32_t w = 0; w < below.size(); ++w) {
      if (below[w] != 0) above[w >> 6] |= Bit(w);
    }
    levels_.push_back(std::move(above));
  }
}

void DomainSet::Insert(uint32_t i) {
  assert(i < capacity_);
  uint64_t& leaf = levels_[0][i >> 6];
  if (leaf & Bit(i)) return;
  bool was_zero = leaf == 0;
  leaf |= Bit(i);
  ++size_;
  uint32_t idx = i >> 6;
  for (size_t l = 1; l < levels_.size() && was_zero; ++l) {
    uint64_t& word = levels_[l][idx >> 6];
    was_zero = word == 0;
    word |= Bit(idx);
    idx >>= 6;
  }
}

void DomainSet::Erase(uint32_t i) {
  assert(i < capacity_);
  uint64_t& leaf = levels_[0][i >> 6];
  if (!(leaf & Bit(i))) return;
  leaf &= ~Bit(i);
  --size_;
  bool now_zero = leaf == 0;
  uint32_t idx = i >> 6;
  for (size_t l = 1; l < levels_.size() && now_zero; ++l) {
    uint64_t& word = levels_[l][idx >> 6];
    word &= ~Bit(idx);
    now_zero = word == 0;
    idx >>= 6;
  }
}

bool DomainSet::Contains(uint32_t i) const {
  return i < capacity_ && (levels_[0][i >> 6] & Bit(i)) != 0;
}

uint32_t DomainSet::First() const {
  if (size_ == 0) return kNone;
  uint32_t pos = 0;
  for (size_t l = levels_.size(); l-- > 0;) pos = pos * 64 + Ctz(levels_[l][pos]);
  return pos;
}

uint32_t DomainSet::Next(uint32_t after) const {
  if (after == kNone || after + 1 >= capacity_) return kNone;
  uint32_t idx = after + 1;
  for (size_t l = 0; l < levels_.size(); ++l) {
    const std::vector<uint64_t>& words = levels_[l];
    uint32_t w = idx >> 6;
    if (w >= words.size()) return kNone;
    uint64_t masked = words[w] & (~uint64_t{0} << (idx & 63));
    if (masked != 0) {
      uint32_t pos = w * 64 + Ctz(masked);
      for (size_t down = l; down-- > 0;) pos = pos * 64 + Ctz(levels_[down][pos]);
      return pos;
    }
    idx = w + 1;  // first word of the next group, one level up
  }
  return kNone;
}

}  // namespace nvlsched::allocator
