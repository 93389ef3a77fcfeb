#include "allocator/gang_queue.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "allocator/errors.h"

namespace nvlsched::allocator {

GangQueue::GangQueue(Options options) : options_(options) {}

absl::btree_map<int32_t, GangQueue::KeySet>& GangQueue::BucketsOf(TypeQueue& q, Shape shape) {
  switch (shape) {
    case Shape::kStrict:
      return q.strict;
    case Shape::kGpu:
      return q.gpu;
    case Shape::kCross:
      break;
  }
  return q.cross;
}

void GangQueue::Insert(const Allocator& allocator, QueuedRequest request) {
  Entry entry;
  const std::string& type_id =
      request.is_batch ? request.batch.instance_type_id : request.single.instance_type_id;
  const std::string& tenant_id = request.is_batch ? request.batch.tenant_id : request.single.tenant_id;
  entry.type = allocator.TypeIndexOf(type_id);
  entry.tenant = allocator.TenantIndexOf(tenant_id);
  assert(entry.type != kNoIndex);
  if (request.is_batch) {
    entry.shape = request.batch.topology_optimized ? Shape::kStrict : Shape::kCross;
    entry.size = request.batch.count;
  } else if (request.single.gpu_count == 0) {
    entry.shape = Shape::kStrict;
    entry.size = 1;
  } else {
    entry.shape = Shape::kGpu;
    entry.size = request.single.gpu_count;
  }
  const QueueKey key = QueueKey::Of(request);
  if (by_type_.size() <= entry.type) by_type_.resize(entry.type + 1);
  TypeQueue& q = by_type_[entry.type];
  if (request.pinned_domain != kNoIndex) {
    pinned_.insert(key);
  } else {
    BucketsOf(q, entry.shape)[entry.size].insert(key);
    if (request.is_batch) batches_.insert(key);
  }
  ++q.size;
  deadlines_.insert({request.deadline_micros, request.sequence});
  ++count_by_priority_[request.priority];
  queued_gpus_[{entry.tenant, entry.type}] += request.gpus;
  key_of_[request.sequence] = key;
  entry.request = std::move(request);
  entries_.emplace(key, std::move(entry));
}

std::optional<QueuedRequest> GangQueue::Remove(uint64_t sequence) {
  auto k = key_of_.find(sequence);
  if (k == key_of_.end()) return std::nullopt;
  const QueueKey key = k->second;
  key_of_.erase(k);
  auto it = entries_.find(key);
  assert(it != entries_.end());
  Entry& entry = it->second;
  TypeQueue& q = by_type_[entry.type];
  if (entry.request.pinned_domain != kNoIndex) {
    pinned_.erase(key);
  } else {
    auto& buckets = BucketsOf(q, entry.shape);
    auto bucket = buckets.find(entry.size);
    bucket->second.erase(key);
    if (bucket->second.empty()) buckets.erase(bucket);
    if (entry.request.is_batch) batches_.erase(key);
  }
  --q.size;
  deadlines_.erase({entry.request.deadline_micros, sequence});
  auto p = count_by_priority_.find(entry.request.priority);
  if (--p->second == 0) count_by_priority_.erase(p);
  auto g = queued_gpus_.find({entry.tenant, entry.type});
  g->second -= entry.request.gpus;
  if (g->second == 0) queued_gpus_.erase(g);
  QueuedRequest request = std::move(entry.request);
  entries_.erase(it);
  return request;
}

const QueuedRequest* GangQueue::Find(uint64_t sequence) const {
  auto k = key_of_.find(sequence);
  if (k == key_of_.end()) return nullptr;
  return &entries_.at(k->second).request;
}

size_t GangQueue::PositionForNew(int32_t priority) const {
  size_t ahead = 0;
  for (auto it = count_by_priority_.lower_bound(priority); it != count_by_priority_.end(); ++it) {
    ahead += it->second;
  }
  return ahead + 1;
}

size_t GangQueue::PositionOf(uint64_t sequence) const {
  auto k = key_of_.find(sequence);
  if (k == key_of_.end()) return 0;
  size_t position = 1;
  for (auto it = entries_.begin(); it != entries_.end() && it->first < k->second; ++it) {
    ++position;
  }
  return position;
}

int64_t GangQueue::QueuedGpus(TenantIndex tenant, TypeIndex type) const {
  auto it = queued_gpus_.find({tenant, type});
  return it == queued_gpus_.end() ? 0 : it->second;
}

absl::InlinedVector<DomainIndex, 8> GangQueue::ExclusionsForNew(int32_t priority) const {
  absl::InlinedVector<DomainIndex, 8> out;
  const QueueKey arriving{-priority, std::numeric_limits<uint64_t>::max()};
  for (const Reservation& r : reservations_) {
    if (r.pinned || r.key < arriving) out.insert(out.end(), r.domains.begin(), r.domains.end());
  }
  return out;
}

std::optional<int64_t> GangQueue::NextDeadline() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

void GangQueue::ForEach(absl::FunctionRef<void(const QueuedRequest&)> fn) const {
  for (const auto& [key, entry] : entries_) fn(entry.request);
}

std::optional<QueueKey> GangQueue::FirstAfter(const absl::btree_map<int32_t, KeySet>& buckets,
                                              int64_t max_size,
                                              const std::optional<QueueKey>& after) {
  std::optional<QueueKey> best;
  for (const auto& [size, keys] : buckets) {
    if (size > max_size) break;
    auto it = after ? keys.upper_bound(*after) : keys.begin();
    if (it != keys.end() && (!best || *it < *best)) best = *it;
  }
  return best;
}

std::optional<QueueKey> GangQueue::NextCandidate(const Allocator& allocator,
                                                 absl::Span<const DomainIndex> excluded,
                                                 const std::optional<QueueKey>& after) const {
  std::optional<QueueKey> best;
  auto consider = [&best](const std::optional<QueueKey>& k) {
    if (k && (!best || *k < *best)) best = k;
  };
  for (TypeIndex t = 0; t < by_type_.size(); ++t) {
    const TypeQueue& q = by_type_[t];
    if (q.size == 0) continue;
    // Each check is skipped outright when the smallest waiting size of its shape cannot fit.
    if (!q.strict.empty()) {
      int largest = allocator.LargestFreeInDomain(t, excluded);
      if (q.strict.begin()->first <= largest) consider(FirstAfter(q.strict, largest, after));
    }
    if (!q.gpu.empty()) {
      int largest = allocator.LargestFreeGpus(t, excluded);
      if (q.gpu.begin()->first <= largest) consider(FirstAfter(q.gpu, largest, after));
    }
    if (!q.cross.empty()) {
      int64_t free = allocator.TotalFreeMachines(t, excluded);
      if (q.cross.begin()->first <= free) consider(FirstAfter(q.cross, free, after));
    }
  }
  return best;
}

absl::InlinedVector<DomainIndex, 2> GangQueue::ChooseReservation(
    const Allocator& allocator, const Entry& holder, absl::Span<const DomainIndex> excluded) const {
  absl::InlinedVector<DomainIndex, 2> chosen;
  // A batch never spans sites, so neither does its reservation: the named site's domains
  // only; a cross-domain batch without one stays in the site of its first (most free) domain.
  SiteIndex site = kNoIndex;
  if (holder.request.is_batch && !holder.request.batch.site_id.empty()) {
    site = allocator.SiteIndexOf(holder.request.batch.site_id);
    if (site == kNoIndex) return chosen;
  }
  if (holder.shape == Shape::kStrict) {
    DomainIndex d = allocator.MostFreeDomain(holder.type, holder.size, excluded, site);
    if (d != kNoIndex) chosen.push_back(d);
    return chosen;
  }
  // Cross-domain: most free domains first until their machines add up to the count.
  absl::InlinedVector<DomainIndex, 8> skip(excluded.begin(), excluded.end());
  int64_t total = 0;
  while (total < holder.size) {
    DomainIndex d = allocator.MostFreeDomain(holder.type, 1, skip, site);
    if (d == kNoIndex) break;
    site = allocator.SiteOfDomain(d);
    chosen.push_back(d);
    skip.push_back(d);
    total += allocator.DomainTotalMachines(holder.type, d);
  }
  return chosen;
}

absl::Status GangQueue::Plan(const Allocator& allocator, const Entry& entry,
                             absl::Span<const DomainIndex> excluded, Placement* out,
                             bool use_pin) const {
  PlanConstraints constraints;
  constraints.excluded_domains = excluded;
  constraints.committed_quota_gpus = QueuedGpus(entry.tenant, entry.type) - entry.request.gpus;
  if (use_pin) constraints.pinned_domain = entry.request.pinned_domain;
  absl::StatusOr<Placement> plan =
      entry.request.is_batch ? allocator.PlanBatch(entry.request.batch, constraints)
                             : allocator.PlanSingle(entry.request.single, constraints);
  if (!plan.ok()) return plan.status();
  *out = *std::move(plan);
  return absl::OkStatus();
}

size_t GangQueue::Schedule(const Allocator& allocator, int64_t now_micros, Sink& sink) {
  // 1. Expiry, oldest deadline first.
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_micros) {
    std::optional<QueuedRequest> expired = Remove(deadlines_.begin()->second);
    sink.Expired(*expired);
  }

  // 2. and 3. One walk in queue order. `cursor`: every request at or before it is done
  // (placed, or known not to fit outside the reservations ahead of it).
  reservations_.clear();
  const size_t depth = static_cast<size_t>(std::max(options_.reservation_depth, 0));
  size_t holders_considered = 0;
  absl::InlinedVector<DomainIndex, 8> excluded;
  std::optional<QueueKey> cursor;
  size_t placed = 0;
  // Pinned requests first: placed in their domain, or it is reserved for them.
  // (btree iterators do not survive an erase: each step looks the next key up.)
  for (std::optional<QueueKey> after;;) {
    auto it = after ? pinned_.upper_bound(*after) : pinned_.begin();
    if (it == pinned_.end()) break;
    const QueueKey key = *it;
    after = key;
    const Entry& entry = entries_.at(key);
    Placement placement;
    // A pinned domain an operator has since closed to the request (MAINTENANCE, or DEGRADED
    // for a strict batch) would hold it forever: it is then placed anywhere it fits, like
    // any request, and reserves nothing.
    const DomainState pinned_state = allocator.DomainAt(entry.request.pinned_domain).state;
    if (pinned_state == DomainState::kMaintenance ||
        (pinned_state == DomainState::kDegraded && entry.request.is_batch)) {
      if (Plan(allocator, entry, excluded, &placement, /*use_pin=*/false).ok()) {
        placement.started_micros = now_micros;
        std::optional<QueuedRequest> request = Remove(key.sequence);
        sink.Placed(*request, placement);
        ++placed;
      }
      continue;
    }
    if (Plan(allocator, entry, {}, &placement).ok()) {
      placement.started_micros = now_micros;
      std::optional<QueuedRequest> request = Remove(key.sequence);
      sink.Placed(*request, placement);
      ++placed;
      continue;
    }
    const DomainIndex d = entry.request.pinned_domain;
    excluded.push_back(d);
    Reservation r{key.sequence, key, entry.type, {d}};
    r.pinned = true;
    reservations_.push_back(std::move(r));
  }
  auto reserve = [&](const QueueKey& key) {
    ++holders_considered;
    const Entry& holder = entries_.at(key);
    absl::InlinedVector<DomainIndex, 2> domains = ChooseReservation(allocator, holder, excluded);
    if (domains.empty()) return;
    excluded.insert(excluded.end(), domains.begin(), domains.end());
    reservations_.push_back(Reservation{key.sequence, key, holder.type, std::move(domains)});
  };
  while (true) {
    std::optional<QueueKey> candidate = NextCandidate(allocator, excluded, cursor);
    std::optional<QueueKey> next_batch;
    if (holders_considered < depth) {
      auto it = cursor ? batches_.upper_bound(*cursor) : batches_.begin();
      if (it != batches_.end()) next_batch = *it;
    }
    if (!candidate && !next_batch) break;
    if (candidate && (!next_batch || !(*next_batch < *candidate))) {
      // Fits by the counts: plan it (a site, partition affinity or a lowered quota may
      // still refuse it).
      const Entry& entry = entries_.at(*candidate);
      Placement placement;
      absl::Status planned = Plan(allocator, entry, excluded, &placement);
      cursor = *candidate;
      if (planned.ok()) {
        placement.started_micros = now_micros;
        std::optional<QueuedRequest> request = Remove(candidate->sequence);
        sink.Placed(*request, placement);
        ++placed;
        continue;
      }
      if (entry.request.is_batch && holders_considered < depth &&
          GetCapacityShortfall(planned).has_value()) {
        reserve(*candidate);
      }
      continue;
    }
    // The next batch comes before anything that fits: it waits, and holds a reservation.
    cursor = *next_batch;
    reserve(*next_batch);
  }
  return placed;
}

}  // namespace nvlsched::allocator
