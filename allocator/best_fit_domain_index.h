// BestFitDomainIndex: for one instance type, the NVLink domains bucketed by how many free
// machines of that type they have right now. THIS IS WHERE A STRICT BATCH'S DOMAIN IS
// CHOSEN: FindBestFit(k) = the domain with the fewest free machines that still holds k,
// ties broken by the lowest domain index.
//
// Layout: bucket c (1..kMaxMachinesPerDomain) is a DomainSet of the domains with exactly c
// free machines; a SmallBitset marks the non-empty buckets. FindBestFit is one
// find-next-set over the bucket bitmap plus one DomainSet::First — O(1) in the number of
// domains. Domains with no free machine are in no bucket.
//
// "Free" here means what FleetState says: READY and held by nothing (a machine partly held
// by GPU-granular instances is not free for a batch).
//
// Thread-safety: not synchronized; owned by FleetState.
// Invariant: a domain is in bucket c iff the last Update for it said new_free == c; the
// caller (FleetState::SyncCell) keeps that equal to a recount (checked by CheckInvariants).
#ifndef NVLSCHED_ALLOCATOR_BEST_FIT_DOMAIN_INDEX_H_
#define NVLSCHED_ALLOCATOR_BEST_FIT_DOMAIN_INDEX_H_

#include <array>
#include <cstdint>

#include "absl/types/span.h"
#include "allocator/domain_set.h"
#include "allocator/model.h"
#include "allocator/placement.h"
#include "allocator/small_bitset.h"

namespace nvlsched::allocator {

class BestFitDomainIndex {
 public:
  // Makes room for domains 0..num_domains-1. Allocates; inventory path only.
  void Reserve(uint32_t num_domains);

  // Moves domain d from bucket old_free to bucket new_free (0 = in no bucket).
  // Cost: O(1), no allocation.
  void Update(DomainIndex d, int old_free, int new_free);

  // The best-fit domain for k machines (1 <= k), or kNoIndex if no domain has k free.
  // Cost: O(1).
  DomainIndex FindBestFit(int k) const;

  // Most free machines in any one domain (0 if none).
  int LargestFree() const;
  // The same, and the best fit, ignoring the domains listed in `excluded` (any order,
  // duplicates allowed). Cost: O(1) when excluded is empty; else O(buckets visited +
  // excluded), as each bucket is walked in index order only past excluded domains.
  int LargestFree(absl::Span<const DomainIndex> excluded) const {
    return excluded.empty() ? LargestFree() : LargestFreeExcluding(excluded);
  }
  DomainIndex FindBestFit(int k, absl::Span<const DomainIndex> excluded) const {
    return excluded.empty() ? FindBestFit(k) : FindBestFitExcluding(k, excluded);
  }
  // Smallest non-empty bucket >= c, or 0 if none.
  int BucketAtLeast(int c) const;
  // Largest non-empty bucket <= c, or 0 if none.
  int BucketAtMost(int c) const;

  // Domains with exactly c free machines (1 <= c <= kMaxMachinesPerDomain).
  const DomainSet& Bucket(int c) const { return buckets_[c]; }
  // Domains with at least one free machine, in index order (SPREAD walks this).
  const DomainSet& DomainsWithFree() const { return with_free_; }

 private:
  int LargestFreeExcluding(absl::Span<const DomainIndex> excluded) const;
  DomainIndex FindBestFitExcluding(int k, absl::Span<const DomainIndex> excluded) const;

  std::array<DomainSet, kMaxMachinesPerDomain + 1> buckets_;  // [0] unused
  DomainSet with_free_;
  SmallBitset non_empty_;  // bit c <=> buckets_[c] is not empty
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_BEST_FIT_DOMAIN_INDEX_H_
