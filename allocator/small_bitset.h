// SmallBitset: a fixed 192-bit set with find-first / find-next / find-last.
//
// Two uses, both bounded by kMaxMachinesPerDomain (144):
//   - positions of machines inside one NVLink domain, in tray order (bit i = the i-th
//     lowest tray), so "lowest free tray" is one count-trailing-zeros;
//   - free-count buckets of BestFitDomainIndex (bit c = some domain has exactly c free).
//
// Thread-safety: a plain value type; not synchronized.
// Cost: every operation is O(1) (at most three 64-bit words).
#ifndef NVLSCHED_ALLOCATOR_SMALL_BITSET_H_
#define NVLSCHED_ALLOCATOR_SMALL_BITSET_H_

#include <array>
#include <cassert>
#include <cstdint>

namespace nvlsched::allocator {

class SmallBitset {
 public:
  static constexpr int kBits = 192;
  static constexpr int kWords = kBits / 64;

  void Set(int i) {
    assert(i >= 0 && i < kBits);
    words_[i >> 6] |= Bit(i);
  }
  void Reset(int i) {
    assert(i >= 0 && i < kBits);
    words_[i >> 6] &= ~Bit(i);
  }
  // Every member of `other` added / removed: three word operations.
  void SetAll(const SmallBitset& other) {
    for (int w = 0; w < kWords; ++w) words_[w] |= other.words_[w];
  }
  void ResetAll(const SmallBitset& other) {
    for (int w = 0; w < kWords; ++w) words_[w] &= ~other.words_[w];
  }
  bool Test(int i) const { return (words_[i >> 6] & Bit(i)) != 0; }
  // Members i with w * 64 <= i < (w + 1) * 64, as bit i - w * 64 of a word: for loops that
  // walk the members in order a word at a time. REQUIRES: 0 <= w < kWords.
  uint64_t Word(int w) const { return words_[w]; }
  bool None() const { return (words_[0] | words_[1] | words_[2]) == 0; }
  void Clear() { words_ = {}; }

  int Count() const {
    return __builtin_popcountll(words_[0]) + __builtin_popcountll(words_[1]) +
           __builtin_popcountll(words_[2]);
  }

  // Smallest member >= from, or -1.
  int NextFrom(int from) const {
    if (from < 0) from = 0;
    if (from >= kBits) return -1;
    int w = from >> 6;
    uint64_t word = words_[w] & (~uint64_t{0} << (from & 63));
    while (true) {
      if (word != 0) return (w << 6) + __builtin_ctzll(word);
      if (++w == kWords) return -1;
      word = words_[w];
    }
  }
  int First() const { return NextFrom(0); }

  // Largest member <= from, or -1.
  int PrevFrom(int from) const {
    if (from < 0) return -1;
    if (from >= kBits) from = kBits - 1;
    int w = from >> 6;
    int shift = 63 - (from & 63);
    uint64_t word = (words_[w] << shift) >> shift;
    while (true) {
      if (word != 0) return (w << 6) + 63 - __builtin_clzll(word);
      if (--w < 0) return -1;
      word = words_[w];
    }
  }
  int Last() const { return PrevFrom(kBits - 1); }

  friend bool operator==(const SmallBitset& a, const SmallBitset& b) {
    return a.words_ == b.words_;
  }
  friend bool operator!=(const SmallBitset& a, const SmallBitset& b) { return !(a == b); }

 private:
  static uint64_t Bit(int i) { return uint64_t{1} << (i & 63); }

  std::array<uint64_t, kWords> words_{};
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_SMALL_BITSET_H_
