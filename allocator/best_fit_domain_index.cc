#include "allocator/best_fit_domain_index.h"

#include <cassert>

namespace nvlsched::allocator {

void BestFitDomainIndex::Reserve(uint32_t num_domains) {
  for (DomainSet& bucket : buckets_) bucket.Reserve(num_domains);
  with_free_.Reserve(num_domains);
}

void BestFitDomainIndex::Update(DomainIndex d, int old_free, int new_free) {
  assert(old_free >= 0 && old_free <= kMaxMachinesPerDomain);
  assert(new_free >= 0 && new_free <= kMaxMachinesPerDomain);
  if (old_free == new_free) return;
  if (old_free > 0) {
    DomainSet& bucket = buckets_[old_free];
    bucket.Erase(d);
    if (bucket.Empty()) non_empty_.Reset(old_free);
  }
  if (new_free > 0) {
    buckets_[new_free].Insert(d);
    non_empty_.Set(new_free);
  }
  if (old_free == 0) {
    with_free_.Insert(d);
  } else if (new_free == 0) {
    with_free_.Erase(d);
  }
}

DomainIndex BestFitDomainIndex::FindBestFit(int k) const {
  int c = BucketAtLeast(k);
  return c == 0 ? kNoIndex : buckets_[c].First();
}

int BestFitDomainIndex::LargestFree() const {
  int c = non_empty_.Last();
  return c < 0 ? 0 : c;
}

int BestFitDomainIndex::LargestFreeExcluding(absl::Span<const DomainIndex> excluded) const {
  for (int c = LargestFree(); c != 0; c = BucketAtMost(c - 1)) {
    const DomainSet& bucket = buckets_[c];
    for (DomainIndex d = bucket.First(); d != DomainSet::kNone; d = bucket.Next(d)) {
      if (!ListsDomain(excluded, d)) return c;
    }
  }
  return 0;
}

DomainIndex BestFitDomainIndex::FindBestFitExcluding(int k,
                                                     absl::Span<const DomainIndex> excluded) const {
  for (int c = BucketAtLeast(k); c != 0; c = BucketAtLeast(c + 1)) {
    const DomainSet& bucket = buckets_[c];
    for (DomainIndex d = bucket.First(); d != DomainSet::kNone; d = bucket.Next(d)) {
      if (!ListsDomain(excluded, d)) return d;
    }
  }
  return kNoIndex;
}

int BestFitDomainIndex::BucketAtLeast(int c) const {
  if (c < 1) c = 1;
  int found = non_empty_.NextFrom(c);
  return found < 0 ? 0 : found;
}

int BestFitDomainIndex::BucketAtMost(int c) const {
  if (c < 1) return 0;
  int found = non_empty_.PrevFrom(c);
  return found < 1 ? 0 : found;
}

}  // namespace nvlsched::allocator
