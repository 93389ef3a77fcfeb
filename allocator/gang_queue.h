// GangQueue: where requests that cannot be placed now wait, and the policy that places them
// later — order, reservations, backfill. Pure and deterministic like the rest of the
// allocator: time is an input (microseconds), every tie is broken by index or sequence.
//
// Order: higher priority first (the tenant's priority when the request was queued), then
// arrival (sequence, assigned by the caller, increasing).
//
// One pass (Schedule), run by the owner whenever capacity or the queue changed:
//   1. Requests whose deadline has passed expire, oldest deadline first.
//   2. Requests are visited in order. One that can be placed now — outside the domains
//      reserved by the holders ahead of it — is placed (best fit and the other placement
//      rules of the allocator apply unchanged). Backfill is exactly this: a request behind
//      a waiting batch is placed as soon as it fits elsewhere.
//   3. A batch that cannot be placed becomes a holder, up to reservation_depth holders per
//      pass. A strict batch reserves the one domain that can hold it soonest: the most free
//      machines of its type among domains big enough for it and not reserved ahead of it,
//      ties by the lowest index. A cross-domain batch reserves, in the same order, as many
//      whole domains as it takes for their machines to add up to its count; both stay in
//      the batch's site (BatchRequest::site_id, else the site of the first domain chosen),
//      as a batch never spans sites. Reserved domains
//      are excluded for every request behind the holder (and for new requests, which arrive
//      behind it unless their priority is higher), with one exception: a GPU-granular single
//      behind it may still take a machine there that is already partly held (some GPUs held
//      by GPU-granular instances), never a free one (placement.h, PlanConstraints). The
//      reservation holds the domain's free machines, and those that become free, for the
//      holder; a partly held machine is not one it could take.
// Before all this, requests pinned to a domain (preemptors, QueuedRequest::pinned_domain) are
// visited in queue order: each is placed in its domain if it fits there now, and otherwise
// that domain is reserved for it against every other request (queued or new, whatever its
// priority): its spot victims were evicted to make room for it.
// Reservations are recomputed by every pass from the queue and the fleet alone, so the same
// queue on the same fleet always has the same reservations (after a restart too).
//
// Cost: a pass does not scan the queue. Waiting requests are indexed by (instance type,
// shape, size), so a pass looks only at the first waiting request of each shape and size
// that could fit what is free (outside the reservations ahead), plus O(log n) to find each
// holder and one Allocator::MostFreeDomain per holder (a walk of the best-fit buckets; a scan
// of the domains when none of them has a free machine). A release that places nothing:
// 431 ns with 10,000 queued on 100 domains (bench/queue_bench.cc).
//
// Thread-safety: none; one owner (the daemon's State, on the engine thread).
#ifndef NVLSCHED_ALLOCATOR_GANG_QUEUE_H_
#define NVLSCHED_ALLOCATOR_GANG_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "allocator/allocator.h"
#include "allocator/model.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

// One waiting request, as the owner queued it.
struct QueuedRequest {
  uint64_t sequence = 0;          // arrival number: unique, larger = later (the owner's ticket)
  int32_t priority = 0;           // higher is placed first
  int64_t deadline_micros = 0;    // expires once now >= deadline
  int64_t queued_micros = 0;      // when it was queued (wait time = placed - queued)
  bool is_batch = true;           // batch (PlanBatch) or single (PlanSingle)
  BatchRequest batch{};           // when is_batch
  SingleRequest single{};         // when !is_batch
  int64_t gpus = 0;               // quota GPUs it holds while queued
  // A request that preempted spot instances (Allocator::PlanPreemption) waits for the domain
  // its victims are leaving: it is placed there and nowhere else, and that domain is
  // reserved for it ahead of every other request (see Schedule). kNoIndex: not pinned.
  DomainIndex pinned_domain = kNoIndex;
};

// The order of the queue: priority descending, then sequence ascending.
struct QueueKey {
  int32_t neg_priority = 0;
  uint64_t sequence = 0;

  static QueueKey Of(const QueuedRequest& r) { return {-r.priority, r.sequence}; }
  friend bool operator<(const QueueKey& a, const QueueKey& b) {
    return a.neg_priority != b.neg_priority ? a.neg_priority < b.neg_priority
                                            : a.sequence < b.sequence;
  }
  friend bool operator==(const QueueKey& a, const QueueKey& b) {
    return a.neg_priority == b.neg_priority && a.sequence == b.sequence;
  }
};

// A waiting batch that holds domains, as the last pass left it.
struct Reservation {
  uint64_t sequence = 0;    // the holder
  QueueKey key{};
  TypeIndex type = kNoIndex;
  absl::InlinedVector<DomainIndex, 2> domains;  // reserved whole, for its type
  bool pinned = false;  // a preemptor's domain: reserved against every request, new or queued
};

class GangQueue {
 public:
  struct Options {
    int reservation_depth = 4;  // holders per pass (0: no reservations, plain backfill)
    size_t max_length = 100000;
  };

  // What a pass did, one call per request it removed. The queue has already removed it.
  class Sink {
   public:
    virtual ~Sink() = default;
    // MUST apply `placement` to the allocator the pass runs on before returning (the pass
    // plans the next request against it).
    virtual void Placed(const QueuedRequest& request, const Placement& placement) = 0;
    virtual void Expired(const QueuedRequest& request) = 0;
  };

  explicit GangQueue(Options options);
  GangQueue() : GangQueue(Options{}) {}

  const Options& options() const { return options_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  bool full() const { return entries_.size() >= options_.max_length; }
  // Requests waiting for machines of one type. O(1).
  size_t size_of_type(TypeIndex type) const {
    return type < by_type_.size() ? by_type_[type].size : 0;
  }

  // Adds a request (the allocator resolves its type; REQUIRES: the type exists and the
  // sequence is not queued). The caller checks full() and feasibility first.
  void Insert(const Allocator& allocator, QueuedRequest request);
  // Removes a request; returns it, or nullopt when no request has that sequence.
  std::optional<QueuedRequest> Remove(uint64_t sequence);
  const QueuedRequest* Find(uint64_t sequence) const;

  // 1-based position a request with this priority would take if queued now (behind every
  // request of the same or higher priority). O(distinct priorities).
  size_t PositionForNew(int32_t priority) const;
  // 1-based position of a queued request; 0 when not queued. O(position).
  size_t PositionOf(uint64_t sequence) const;

  // Quota GPUs the tenant's queued requests of the type hold.
  int64_t QueuedGpus(TenantIndex tenant, TypeIndex type) const;

  // Domains a request with this priority arriving now must not use: those reserved by
  // holders ahead of it (every holder of the same or a higher priority).
  absl::InlinedVector<DomainIndex, 8> ExclusionsForNew(int32_t priority) const;

  // The reservations of the last pass, holders in queue order.
  const std::vector<Reservation>& reservations() const { return reservations_; }
  // True when the last pass reserved domain d for a waiting request of type t. O(depth).
  bool Reserves(TypeIndex type, DomainIndex d) const {
    for (const Reservation& r : reservations_) {
      if (r.type == type && ListsDomain(r.domains, d)) return true;
    }
    return false;
  }
  // Replaces them (the owner's rollback restores the ones it saved).
  void RestoreReservations(std::vector<Reservation> reservations) {
    reservations_ = std::move(reservations);
  }

  // Earliest deadline of a queued request, or nullopt.
  std::optional<int64_t> NextDeadline() const;

  // One pass, as described above. `allocator` must be the one the sink applies placements
  // to. Returns the number of requests placed.
  size_t Schedule(const Allocator& allocator, int64_t now_micros, Sink& sink);

  // Every queued request in order.
  void ForEach(absl::FunctionRef<void(const QueuedRequest&)> fn) const;

 private:
  enum class Shape : uint8_t { kStrict, kGpu, kCross };
  struct Entry {
    QueuedRequest request;
    TypeIndex type = kNoIndex;
    TenantIndex tenant = kNoIndex;
    Shape shape = Shape::kStrict;
    int32_t size = 0;  // machines (strict, cross) or GPUs (gpu)
  };
  using KeySet = absl::btree_set<QueueKey>;
  // Waiting requests of one instance type by shape and size.
  struct TypeQueue {
    absl::btree_map<int32_t, KeySet> strict;  // machines in one domain
    absl::btree_map<int32_t, KeySet> gpu;     // GPUs on one machine
    absl::btree_map<int32_t, KeySet> cross;   // machines anywhere
    size_t size = 0;
  };
  // What is free for one type outside the excluded domains.
  struct Free {
    int largest_domain = 0;
    int64_t machines = 0;
    int largest_gpus = 0;
  };

  absl::btree_map<int32_t, KeySet>& BucketsOf(TypeQueue& q, Shape shape);
  static std::optional<QueueKey> FirstAfter(const absl::btree_map<int32_t, KeySet>& buckets,
                                            int64_t max_size, const std::optional<QueueKey>& after);
  // The first request after `after` that could fit what it may use with `excluded` excluded
  // (free machines outside them; for GPU singles also partly held machines inside them).
  std::optional<QueueKey> NextCandidate(const Allocator& allocator,
                                        absl::Span<const DomainIndex> excluded,
                                        const std::optional<QueueKey>& after) const;
  // Chooses the domains a holder reserves (empty when none is left).
  absl::InlinedVector<DomainIndex, 2> ChooseReservation(const Allocator& allocator,
                                                        const Entry& holder,
                                                        absl::Span<const DomainIndex> excluded) const;
  absl::Status Plan(const Allocator& allocator, const Entry& entry,
                    absl::Span<const DomainIndex> excluded, Placement* out,
                    bool use_pin = true) const;

  Options options_;
  absl::btree_map<QueueKey, Entry> entries_;
  absl::flat_hash_map<uint64_t, QueueKey> key_of_;
  std::vector<TypeQueue> by_type_;  // indexed by TypeIndex
  KeySet batches_;                  // every waiting batch not pinned (holders come from here)
  KeySet pinned_;                   // requests pinned to a domain (not in by_type_/batches_)
  absl::btree_set<std::pair<int64_t, uint64_t>> deadlines_;  // (deadline, sequence)
  absl::btree_map<int32_t, size_t> count_by_priority_;
  absl::flat_hash_map<std::pair<TenantIndex, TypeIndex>, int64_t> queued_gpus_;
  std::vector<Reservation> reservations_;
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_GANG_QUEUE_H_
