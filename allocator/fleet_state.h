// FleetState: the allocator's in-memory tables and the free-capacity indexes over them.
//
// Internal to allocator/: Allocator owns one and is the only writer; the placement
// policies (strict_batch_policy.h, cross_domain_policy.h, gpu_granular_policy.h), the
// capacity view and the invariant checker read it. It knows no rules — only how to keep
// the indexes equal to the tables.
//
// Records live in dense slots addressed by integer indices. Machines, domains and batches
// sit in StableVectors so their addresses never move: the machine id map keys machines by
// string_view into the records themselves, and Allocator::MachineAt / DomainAt hand out
// references to them. Claims are named by index only, so they sit in one contiguous
// std::vector (no chunk table to go through on the hot path; it grows only while the fleet's
// instance count reaches a new high). Removed machines, released claims and finished
// batches keep their data in the slot (the undo journal puts them back) and the slot is
// reused last-in first-out.
//
// Claims (instances) have no string id and no id map: callers hold an InstanceHandle (claim
// slot + the slot's generation, placement.h), so finding a claim is an index and a compare.
// A batch's id string is stored once, in its BatchRecord, not in each of its claims.
//
// Index maintenance. For each (instance type, domain) a DomainCell counts machines, free
// machines and free GPUs, with tray-ordered bitmaps. Every change to a machine goes
//     RemoveContribution(m); <change the machine or its holdings>; AddContribution(m);
// (claims use cheaper equivalents: ChangeContribution applies only the difference, and a
// FreeMachineRun sums the fixed difference of free machines taken whole or given back, so
// a batch's machines update their cell once) and then, once per touched domain,
// SyncCell(type, domain), which diffs the cell against what the per-type indexes
// (BestFitDomainIndex, GpuGranularIndex, histograms) currently reflect and moves the
// domain between buckets. Syncing once per domain is what makes an
// 18-machine batch one bucket move instead of eighteen.
//
// Thread-safety: not synchronized; one owner.
// Invariant 4 (checked by invariants.h): after SyncCell of every touched cell, every cell
// and index equals a recount from the machine and claim records.
#ifndef NVLSCHED_ALLOCATOR_FLEET_STATE_H_
#define NVLSCHED_ALLOCATOR_FLEET_STATE_H_

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "allocator/best_fit_domain_index.h"
#include "allocator/gpu_granular_index.h"
#include "allocator/id_view_index.h"
#include "allocator/model.h"
#include "allocator/placement.h"
#include "allocator/slot_recycler.h"
#include "allocator/small_bitset.h"
#include "allocator/stable_vector.h"

namespace nvlsched::allocator {

struct TypeRecord {
  InstanceType spec;
};

struct DomainRecord {
  Domain spec;
  SiteIndex site = kNoIndex;
  // Live machines of every type, ascending tray index; a machine's `position` is its
  // index here and its bit in the DomainCell bitmaps.
  std::vector<MachineIndex> machines_by_tray;
};

struct MachineRecord {
  Machine spec;
  bool live = false;
  DomainIndex domain = kNoIndex;
  TypeIndex type = kNoIndex;
  int32_t position = 0;
  ClaimIndex whole_claim = kNoIndex;  // the whole-machine instance holding it
  int32_t granular_gpus = 0;          // GPUs held by GPU-granular instances
  int32_t granular_claims = 0;        // how many GPU-granular instances
  // Held whole by a spot instance no preemption has chosen yet (ClaimRecord::Reclaimable).
  bool spot_whole = false;
  // Its domain is in MAINTENANCE: nothing new goes there (FleetState::SetDomainSpec).
  bool domain_closed = false;

  // May take new instances: READY, in a domain open to them.
  bool ready() const { return spec.state == MachineState::kReady && !domain_closed; }
  bool held() const { return whole_claim != kNoIndex || granular_claims > 0; }
  // Free for a batch or a whole-machine single.
  bool free_whole() const { return ready() && !held(); }
  // GPUs a GPU-granular single could take now.
  int32_t free_gpus() const {
    return ready() && whole_claim == kNoIndex ? spec.gpu_count - granular_gpus : 0;
  }
  // A preemption could free it: READY and held whole by a spot instance not yet preempted.
  // (GPU-granular spot instances are never preempted: nothing here lists a machine's
  // GPU-granular holders.)
  bool reclaimable() const { return spot_whole && ready(); }
};

// TenantRecord::max_machines of a type with per-site quota entries only: no fleet-wide
// limit. site_max_machines without an entry for the site: kNoSiteQuota.
inline constexpr int64_t kNoFleetQuota = INT64_MAX / (4 * kMaxGpusPerMachine);
inline constexpr int64_t kNoSiteQuota = -1;

struct TenantRecord {
  Tenant spec;
  std::vector<int64_t> max_machines;  // by TypeIndex; 0 when the type is not in the quota
  std::vector<int64_t> used_gpus;     // by TypeIndex
  // By TypeIndex then SiteIndex: the per-site quota (Tenant::site_quota; kNoSiteQuota when
  // the site has no entry: then the site is limited only by max_machines, or closed when the
  // type has per-site entries only) and the GPUs the tenant holds there. site_limited[type]:
  // the type has some per-site entry (else the per-site check is skipped: O(1)).
  std::vector<std::vector<int64_t>> site_max_machines;
  std::vector<std::vector<int64_t>> site_used_gpus;
  std::vector<bool> site_limited;
};

struct ClaimRecord {
  // Bumped each time the slot is filled, never lowered: InstanceHandle{slot, generation}
  // names this claim and nothing else, ever.
  uint64_t generation = 0;
  BatchIndex batch = kNoIndex;  // kNoIndex for a single
  TenantIndex tenant = kNoIndex;
  TypeIndex type = kNoIndex;
  MachineIndex machine = kNoIndex;
  int32_t gpu_count = 0;
  bool whole_machine = true;
  bool topology_optimized = true;
  bool live = false;
  bool spot = false;
  bool preempted = false;     // chosen as a victim (Allocator::MarkPreempted)
  int64_t started_micros = 0;
  // The live claims of one batch form a doubly linked list (BatchRecord::first_claim), kept
  // by Attach/Detach, so a spot batch spanning domains can be evicted whole.
  ClaimIndex batch_prev = kNoIndex;
  ClaimIndex batch_next = kNoIndex;
  absl::InlinedVector<PartitionIndex, 2> partitions;

  // Holding its machine whole, a preemption may evict it.
  bool Reclaimable() const { return spot && !preempted && whole_machine; }
};

// The instances one Apply (or RestoreInstance with one batch_id) created together. Lives
// while any of them does; invariant 2 is checked over its claims.
struct BatchRecord {
  std::string id;           // the caller's batch id; the slot's buffer is reused
  int32_t live_claims = 0;  // maintained by FleetState::CountClaims
  int64_t gpus = 0;         // GPUs its live claims hold (CountClaims)
  ClaimIndex first_claim = kNoIndex;  // its live claims, linked through ClaimRecord
  bool live = false;
};

struct PartitionRecord {
  std::string id;
  // (domain, live instances of the partition in it); entries may reach count 0.
  absl::InlinedVector<std::pair<DomainIndex, int32_t>, 2> domains;
};

// The machines of one instance type in one domain.
struct DomainCell {
  int32_t total = 0;             // live machines, any state
  int32_t free = 0;              // READY and held by nothing
  SmallBitset free_mask;         // positions of the free machines
  SmallBitset granular_mask;     // positions of machines with free GPUs (READY, not whole)
  std::array<uint16_t, kMaxGpusPerMachine + 1> granular_hist{};  // machines by free GPUs
  uint32_t granular_bits = 0;    // bit f <=> granular_hist[f] > 0
  int32_t cleaning = 0;          // in MachineState::kCleaning
  int32_t reclaimable = 0;       // MachineRecord::reclaimable
  SmallBitset reclaim_mask;      // their positions
  int32_t spares = 0;            // the domain's Domain::spare_machines (FleetState::SetSpares)

  // What the per-type indexes reflect; SyncCell moves them to the values above.
  // indexed_free is the Placeable() count BestFitDomainIndex holds the domain under.
  int32_t indexed_total = 0;
  int32_t indexed_capacity = 0;  // Capacity(), as TypeState::domains_by_capacity counts it
  int32_t indexed_free = 0;
  bool indexed_fully_free = false;
  uint32_t indexed_granular_bits = 0;
  int32_t indexed_reach = 0;

  bool FullyFree() const { return total > 0 && free == total; }
  // Free machines a new placement may take: the free ones less the domain's spare trays.
  // What BestFitDomainIndex buckets and every placement policy reads.
  int32_t Placeable() const { return free > spares ? free - spares : 0; }
  // Most machines a new placement could ever take here: all of them less the spares.
  int32_t Capacity() const { return total > spares ? total - spares : 0; }
  // Free machines held back as spares now.
  int32_t SpareFree() const { return free - Placeable(); }
  // What a strict preemptor could have here: free plus reclaimable machines less the
  // spares, or 0 when nothing is reclaimable (such a domain needs no preemption, or cannot
  // be helped by one).
  int32_t Reach() const {
    return reclaimable > 0 ? std::max(free + reclaimable - spares, 0) : 0;
  }
};

// Per instance type: cells by domain plus the indexes over them.
struct TypeState {
  std::vector<DomainCell> cells;  // by DomainIndex
  BestFitDomainIndex best_fit;
  GpuGranularIndex granular;
  // Domains with a reclaimable machine, bucketed by DomainCell::Reach (preemption_policy.h).
  BestFitDomainIndex reclaim;
  int64_t reclaimable_machines = 0;
  int64_t total_machines = 0;
  // Sum of the cells' indexed_free (DomainCell::Placeable as of their last SyncCell): free
  // machines less spares, what a cross-domain batch may take.
  int64_t placeable_machines = 0;
  int64_t free_machines = 0;
  int64_t free_gpus = 0;
  int32_t fully_free_domains = 0;
  std::array<int32_t, kMaxMachinesPerDomain + 1> domains_by_size{};  // by cell total
  SmallBitset domain_sizes;  // bit n <=> domains_by_size[n] > 0
  // By SiteIndex: placeable machines (the cells' indexed_free: free less spares), machines
  // in any state (indexed_total) and their capacity (indexed_capacity: total less spares) of
  // this type in the site's domains, as SyncCell keeps them. What a cross-domain batch,
  // which never spans sites, chooses its site by. Sized to `sites`.
  std::vector<int64_t> site_free;
  std::vector<int64_t> site_total;
  std::vector<int64_t> site_capacity;
  // The same by DomainCell::Capacity (total less spares), and the sum of the capacities.
  std::array<int32_t, kMaxMachinesPerDomain + 1> domains_by_capacity{};
  SmallBitset domain_capacities;  // bit n <=> domains_by_capacity[n] > 0
  int64_t capacity_machines = 0;

  // Most machines of this type in one domain, any state: the largest strict batch that
  // could ever be placed. Cost: O(1).
  int32_t LargestDomain() const { return domain_sizes.None() ? 0 : domain_sizes.Last(); }
  // Most machines of this type a new placement could ever take in one domain (size less
  // spare trays): the largest strict batch that could ever be placed. Cost: O(1).
  int32_t LargestCapacity() const {
    return domain_capacities.None() ? 0 : domain_capacities.Last();
  }
};

// What a request restricts: a site, NVLink logical partitions whose existing instances pin
// single-domain placements (see partition_affinity.h), and domains it must not use
// (PlanConstraints::excluded_domains: reserved for queued requests ahead of it).
struct PlacementScope {
  SiteIndex site = kNoIndex;                     // kNoIndex: any site
  absl::Span<const PartitionIndex> partitions;   // requested partitions already known
  // Any order, duplicates allowed. Never chosen, except that a GPU-granular single may take
  // a machine there that is already partly held (gpu_granular_policy.h).
  absl::Span<const DomainIndex> excluded;
  DomainIndex pinned = kNoIndex;                 // PlanConstraints::pinned_domain
};

// Where a single-domain placement may go, once the scope is resolved to domains.
struct DomainFilter {
  SiteIndex site = kNoIndex;                // kNoIndex: any site
  absl::Span<const DomainIndex> affinity;   // non-empty: only these domains (ascending)
  absl::Span<const DomainIndex> excluded;   // not these (unordered, short); see PlacementScope

  bool active() const { return site != kNoIndex || !affinity.empty() || !excluded.empty(); }
};

// Free machines (READY, held by nothing, so every GPU free) taken whole, or given back, in
// one cell with one GPU count. Apply and ReleaseClaims collect them here and FlushRun
// updates the cell and its type's totals once: an 18-machine batch in one domain is one cell
// update instead of eighteen. Until it is flushed the cell does not reflect the run, so
// flush before anything reads or changes that cell (SyncCell included).
struct FreeMachineRun {
  explicit FreeMachineRun(bool taking) : taking(taking) {}

  bool taking;  // true: taken whole (Apply); false: given back (release)
  bool spot = false;  // by reclaimable claims (ClaimRecord::Reclaimable): count them too
  TypeIndex type = kNoIndex;
  DomainIndex domain = kNoIndex;
  int32_t gpus = 0;
  int32_t count = 0;
  SmallBitset positions;
};

class FleetState {
 public:
  // ---- Lookups: kNoIndex when unknown. Machines and claims: live ones only. ----
  TypeIndex FindType(std::string_view id) const;
  DomainIndex FindDomain(std::string_view id) const;
  MachineIndex FindMachine(std::string_view id) const;
  TenantIndex FindTenant(std::string_view id) const;
  // The live claim the handle names; kNoIndex when the handle is stale or was never valid.
  // Cost: O(1), no hashing.
  ClaimIndex FindClaim(InstanceHandle handle) const {
    return handle.slot < claims.size() && claims[handle.slot].live &&
                   claims[handle.slot].generation == handle.generation
               ? handle.slot
               : kNoIndex;
  }
  InstanceHandle HandleOf(ClaimIndex c) const { return InstanceHandle{c, claims[c].generation}; }
  // An instance as text for people: instance_namer's name for it, or HandleName.
  std::string InstanceName(InstanceHandle handle) const;
  std::string InstanceName(ClaimIndex c) const { return InstanceName(HandleOf(c)); }
  SiteIndex FindSite(std::string_view id) const;
  PartitionIndex FindPartition(std::string_view id) const;

  const DomainCell& cell(TypeIndex t, DomainIndex d) const { return type_states[t].cells[d]; }
  const std::string& TypeName(TypeIndex t) const;    // name, or id when unnamed
  const std::string& DomainName(DomainIndex d) const;
  bool Accepts(const DomainFilter& filter, DomainIndex d) const;
  // Accepts without the excluded list: for the GPU-granular policy, which may still use
  // partly held machines of excluded domains.
  bool InSiteAndAffinity(const DomainFilter& filter, DomainIndex d) const;
  // Placeable machines (DomainCell::Placeable: free less spares) of type t in the listed
  // domains, each counted once (duplicates and indices of unknown domains are ignored).
  // O(excluded^2): the list is short.
  int64_t FreeMachinesIn(TypeIndex t, absl::Span<const DomainIndex> domains) const;

  // ---- Structure (inventory path; allocates) ----
  TypeIndex AppendType(const InstanceType& spec);
  void PopType();  // REQUIRES: the last type has no machines
  DomainIndex AppendDomain(const Domain& spec);
  void PopDomain();  // REQUIRES: the last domain has no machines
  void SetDomainSpec(DomainIndex d, const Domain& spec);
  // Copies the domain's spare_machines into its cells of every type and syncs them. O(types).
  void SetSpares(DomainIndex d);
  // The fleet default for domains without spare_machines; re-syncs those domains' cells.
  // O(domains x types).
  void SetDefaultSpares(int32_t spares);
  // A domain's spare_machines, or the fleet default when it sets none. O(1).
  int32_t EffectiveSpares(DomainIndex d) const {
    return domains[d].spec.spare_machines.value_or(default_spares);
  }
  SiteIndex InternSite(std::string_view site_id);
  PartitionIndex InternPartition(std::string_view partition_id);
  // Rebuilds max_machines and site_max_machines from spec.quota and spec.site_quota (entries
  // for sites not known yet are resolved by InternSite when the site appears).
  void SetTenantQuota(TenantIndex t);

  // Put a live machine into / take it out of its domain's tray order and the indexes.
  void LinkMachine(MachineIndex m);
  void UnlinkMachine(MachineIndex m);

  // ---- Incremental maintenance (hot path; never allocates) ----
  void AddContribution(MachineIndex m);
  void RemoveContribution(MachineIndex m);
  // What a machine adds to its cell besides its count; ChangeContribution applies only the
  // difference since `before` (cheaper than Remove + Add when only holdings changed).
  struct Contribution {
    bool free_whole;
    int32_t free_gpus;
    bool reclaimable;
  };
  static Contribution ContributionOf(const MachineRecord& rec) {
    return {rec.free_whole(), rec.free_gpus(), rec.reclaimable()};
  }
  void ChangeContribution(const MachineRecord& rec, Contribution before);
  void SyncCell(TypeIndex t, DomainIndex d);

  // A claim slot to fill (reused last-in first-out), its generation already bumped.
  ClaimIndex AllocateClaim() {
    ClaimIndex c = claim_slots.Allocate(claims);
    ++claims[c].generation;
    return c;
  }
  // A live batch record with this id and no claims yet. Undo: batches[b].live = false and
  // batch_slots.Unallocate(b).
  BatchIndex AddBatch(std::string_view id) {
    BatchIndex b = batch_slots.Allocate(batches);
    BatchRecord& batch = batches[b];
    batch.id.assign(id.data(), id.size());  // reuses the slot's buffer: no allocation
    batch.live_claims = 0;
    batch.gpus = 0;
    batch.first_claim = kNoIndex;
    batch.live = true;
    return b;
  }

  // The claim record is filled in (live = false); marks it live, holds its machine, counts
  // quota usage, partitions and its batch's claims. Caller then SyncCells the domain.
  void AttachClaim(ClaimIndex c, ClaimRecord& claim);  // REQUIRES: claim is claims[c]
  void AttachClaim(ClaimIndex c) { AttachClaim(c, claims[c]); }
  // Exact inverse of AttachClaim; the record keeps its data so it can be attached again.
  void DetachClaim(ClaimIndex c, ClaimRecord& claim);  // REQUIRES: claim is claims[c]
  void DetachClaim(ClaimIndex c) { DetachClaim(c, claims[c]); }

  // The machine half of AttachClaim / DetachClaim: claim c (claims[c]) starts or stops
  // holding `machine` (machines[claim.machine]). A free machine taken whole, or a whole
  // machine given back free, joins `run` (whose `taking` must match); anything else flushes
  // `run` and updates the cell at once. Apply and ReleaseClaims use these with one run per
  // placement and do the counting half (quota usage, batch and live counts) in sums.
  void HoldMachine(ClaimIndex c, const ClaimRecord& claim, MachineRecord& machine,
                   FreeMachineRun* run);
  void UnholdMachine(ClaimIndex c, const ClaimRecord& claim, MachineRecord& machine,
                     FreeMachineRun* run);
  // Applies a run to its cell and its type's totals and empties it. O(1).
  void FlushRun(FreeMachineRun* run);
  // The counting half of AttachClaim (n > 0) / DetachClaim (n < 0) for n claims of one
  // tenant, type and batch holding `gpus` GPUs between them (negative with n): quota usage,
  // the batch's live claims, the fleet's. Apply counts a whole placement in one call.
  // Returns the batch's live claims after the change (-1 without a batch).
  int32_t CountClaims(TenantIndex tenant, TypeIndex type, BatchIndex batch, int32_t n,
                      int64_t gpus) {
    tenants[tenant].used_gpus[type] += gpus;
    live_claims += n;
    if (batch == kNoIndex) return -1;
    batches[batch].gpus += gpus;
    return batches[batch].live_claims += n;
  }
  // Per-site quota usage: the tenant's GPUs of the type in `site` move by gpus. O(1).
  void CountSiteUsage(TenantIndex tenant, TypeIndex type, SiteIndex site, int64_t gpus) {
    tenants[tenant].site_used_gpus[type][site] += gpus;
  }
  // The batch's list of live claims (ClaimRecord::batch_prev / batch_next). O(1).
  void LinkToBatch(ClaimIndex c, ClaimRecord& claim);   // REQUIRES: claim is claims[c]
  void UnlinkFromBatch(const ClaimRecord& claim);
  // A live claim, not yet preempted, is chosen as a victim (or, undo: no longer). Keeps the
  // machine's reclaimable contribution; caller then SyncCells the domain.
  void SetPreempted(ClaimIndex c, bool preempted);
  // Live partition counts of the claim's partitions in domain d move by delta.
  void CountPartitions(const ClaimRecord& claim, DomainIndex d, int32_t delta);

  // Appends the n lowest-tray free machines of type t in domain d (REQUIRES: n <= free).
  void AppendFreeMachines(TypeIndex t, DomainIndex d, int n, Placement* out) const;
  // Where machine m goes in a plan: indices, GPUs held.
  void FillPlaced(MachineIndex m, int32_t gpus, bool whole_machine, PlacedInstance* placed) const;

  // ---- Tables ----
  std::vector<TypeRecord> types;
  StableVector<DomainRecord> domains;
  StableVector<MachineRecord> machines;  // includes dead slots (live == false)
  std::vector<TenantRecord> tenants;
  std::vector<ClaimRecord> claims;       // includes dead slots; never hold a reference
                                         // across AllocateClaim (it may grow)
  StableVector<BatchRecord> batches;     // includes dead slots
  std::vector<PartitionRecord> partitions;
  std::vector<std::string> sites;
  std::vector<TypeState> type_states;  // by TypeIndex
  // Domains in DomainState::kDegraded, ascending: strict batches never go there.
  absl::InlinedVector<DomainIndex, 4> degraded_domains;
  int32_t default_spares = 0;  // Allocator::SetDefaultSpareMachines

  SlotRecycler machine_slots;  // over `machines`
  SlotRecycler claim_slots;    // over `claims`
  SlotRecycler batch_slots;    // over `batches`
  int64_t live_machines = 0;
  int64_t live_claims = 0;

  absl::flat_hash_map<std::string, TypeIndex> type_by_id;
  absl::flat_hash_map<std::string, DomainIndex> domain_by_id;
  absl::flat_hash_map<std::string, TenantIndex> tenant_by_id;
  absl::flat_hash_map<std::string, SiteIndex> site_by_id;
  absl::flat_hash_map<std::string, PartitionIndex> partition_by_id;
  // Keys view the records' own id strings (stable: StableVector + slot reuse).
  IdViewIndex machine_by_id;
  // Batches RestoreInstance created, by id, so instances restored one by one join their
  // batch. Only RestoreInstance reads or writes it; an entry whose batch has since ended
  // (or was rolled back) is stale and simply replaced.
  absl::flat_hash_map<std::string, BatchIndex> restored_batches;

  InstanceNamer instance_namer;  // Allocator::SetInstanceNamer; may be empty

 private:
  void ResetPositions(DomainIndex d);
  void SyncDomain(DomainIndex d, TypeIndex also);
  void AddToRun(const MachineRecord& rec, bool spot, FreeMachineRun* run);
  // Hold/UnholdMachine's other cases (GPU-granular claims, machines not READY).
  void HoldMachineInPlace(ClaimIndex c, const ClaimRecord& claim, MachineRecord& machine);
  void UnholdMachineInPlace(const ClaimRecord& claim, MachineRecord& machine);
};

// ---- The per-instance hot path, inline so Apply and ReleaseClaims pay no calls (the
// general cases, for drained machines and GPU-granular claims, are in the .cc) ----

inline void FleetState::AddToRun(const MachineRecord& rec, bool spot, FreeMachineRun* run) {
  int32_t gpus = rec.spec.gpu_count;  // all free: nothing else holds it
  if (rec.domain != run->domain || rec.type != run->type || gpus != run->gpus ||
      spot != run->spot) {
    FlushRun(run);
    run->type = rec.type;
    run->domain = rec.domain;
    run->gpus = gpus;
    run->spot = spot;
  }
  run->positions.Set(rec.position);
  ++run->count;
}

inline void FleetState::FlushRun(FreeMachineRun* run) {
  if (run->count == 0) return;
  TypeState& ts = type_states[run->type];
  DomainCell& cell = ts.cells[run->domain];
  uint16_t& hist = cell.granular_hist[run->gpus];
  uint32_t bit = 1u << run->gpus;
  if (run->taking) {
    cell.free -= run->count;
    ts.free_machines -= run->count;
    ts.free_gpus -= int64_t{run->count} * run->gpus;
    cell.free_mask.ResetAll(run->positions);
    cell.granular_mask.ResetAll(run->positions);
    hist = static_cast<uint16_t>(hist - run->count);
    if (hist == 0) cell.granular_bits &= ~bit;
    if (run->spot) {
      cell.reclaimable += run->count;
      ts.reclaimable_machines += run->count;
      cell.reclaim_mask.SetAll(run->positions);
    }
  } else {
    cell.free += run->count;
    ts.free_machines += run->count;
    ts.free_gpus += int64_t{run->count} * run->gpus;
    cell.free_mask.SetAll(run->positions);
    cell.granular_mask.SetAll(run->positions);
    hist = static_cast<uint16_t>(hist + run->count);
    cell.granular_bits |= bit;
    if (run->spot) {
      cell.reclaimable -= run->count;
      ts.reclaimable_machines -= run->count;
      cell.reclaim_mask.ResetAll(run->positions);
    }
  }
  run->count = 0;
  run->positions.Clear();
}

inline void FleetState::HoldMachine(ClaimIndex c, const ClaimRecord& claim,
                                    MachineRecord& machine, FreeMachineRun* run) {
  assert(run->taking);
  if (claim.whole_machine && machine.free_whole()) {
    assert(machine.granular_gpus == 0);
    machine.whole_claim = c;
    machine.spot_whole = claim.Reclaimable();
    AddToRun(machine, machine.spot_whole, run);
  } else {
    FlushRun(run);
    HoldMachineInPlace(c, claim, machine);
  }
}

inline void FleetState::UnholdMachine(ClaimIndex c, const ClaimRecord& claim,
                                      MachineRecord& machine, FreeMachineRun* run) {
  assert(!run->taking);
  (void)c;
  if (claim.whole_machine && machine.ready()) {
    // Held whole, so by invariant 1 nothing else holds it: it becomes free.
    assert(machine.whole_claim == c && machine.granular_claims == 0);
    bool spot = machine.spot_whole;
    machine.whole_claim = kNoIndex;
    machine.spot_whole = false;
    AddToRun(machine, spot, run);
  } else {
    FlushRun(run);
    UnholdMachineInPlace(claim, machine);
  }
}

inline void FleetState::AttachClaim(ClaimIndex c, ClaimRecord& claim) {
  assert(!claim.live && &claim == &claims[c]);
  MachineRecord& machine = machines[claim.machine];
  FreeMachineRun run(/*taking=*/true);
  HoldMachine(c, claim, machine, &run);
  FlushRun(&run);
  CountClaims(claim.tenant, claim.type, claim.batch, +1, claim.gpu_count);
  CountSiteUsage(claim.tenant, claim.type, domains[machine.domain].site, claim.gpu_count);
  if (claim.batch != kNoIndex) LinkToBatch(c, claim);
  if (!claim.partitions.empty()) CountPartitions(claim, machine.domain, +1);
  claim.live = true;
}

inline void FleetState::DetachClaim(ClaimIndex c, ClaimRecord& claim) {
  assert(claim.live && &claim == &claims[c]);
  MachineRecord& machine = machines[claim.machine];
  FreeMachineRun run(/*taking=*/false);
  UnholdMachine(c, claim, machine, &run);
  FlushRun(&run);
  CountClaims(claim.tenant, claim.type, claim.batch, -1, -claim.gpu_count);
  CountSiteUsage(claim.tenant, claim.type, domains[machine.domain].site, -claim.gpu_count);
  if (claim.batch != kNoIndex) UnlinkFromBatch(claim);
  if (!claim.partitions.empty()) CountPartitions(claim, machine.domain, -1);
  claim.live = false;
}

inline void FleetState::LinkToBatch(ClaimIndex c, ClaimRecord& claim) {
  BatchRecord& batch = batches[claim.batch];
  claim.batch_prev = kNoIndex;
  claim.batch_next = batch.first_claim;
  if (batch.first_claim != kNoIndex) claims[batch.first_claim].batch_prev = c;
  batch.first_claim = c;
}

inline void FleetState::UnlinkFromBatch(const ClaimRecord& claim) {
  if (claim.batch_prev != kNoIndex) {
    claims[claim.batch_prev].batch_next = claim.batch_next;
  } else {
    batches[claim.batch].first_claim = claim.batch_next;
  }
  if (claim.batch_next != kNoIndex) claims[claim.batch_next].batch_prev = claim.batch_prev;
}

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_FLEET_STATE_H_
