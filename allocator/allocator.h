// Allocator: the pure placement core of nvlsched. Start reading here.
//
// It owns the in-memory inventory (instance types, NVLink domains, machines, tenants) and
// the instances placed on it, and decides where new instances go:
//   - strict batch / whole-machine single -> strict_batch_policy.h: PlaceStrictBatch
//     chooses the one NVLink domain (best fit, in O(1) via best_fit_domain_index.h), then
//     FleetState::AppendFreeMachines takes its lowest free trays
//   - cross-domain batch (FILL / MIN_DOMAINS / SPREAD) -> cross_domain_policy.h
//   - GPU-granular single -> gpu_granular_policy.h
//   - NVLink partition affinity -> partition_affinity.h
//   - offers -> capacity_view.h; error payloads -> errors.h; checks -> invariants.h
//   - queued requests (gang_queue.h): PlanBatch / PlanSingle with PlanConstraints
//     (placement.h: domains reserved for requests ahead, quota committed to queued ones)
//     and the planning queries by dense index (TypeIndexOf ... MostFreeDomain)
//
// Placement is plan, then apply: Plan* are const and return a value or an error;
// Apply cannot fail. Every mutation appends an inverse record to an undo journal, so a
// group of changes can be rolled back exactly (Mark / RollbackTo) if the durable commit
// fails, and forgotten (ClearJournal) once it succeeds.
//
// Instances have no string id here: Apply and RestoreInstance hand out an InstanceHandle
// (placement.h) and PlanRelease / FindInstance take it back, so the hot path never hashes
// or copies an instance id. The caller keeps its own ids next to the handles (the daemon's
// State does) and installs an InstanceNamer so that messages still name instances by
// those ids (SetInstanceNamer).
//
// Pure: no I/O, threads, clocks or randomness; ids come from the caller. Deterministic:
// ids map to dense indices in insertion order and every tie is broken by index (domain
// index = order in which domains were first added); handles are minted deterministically
// too.
//
// Thread-safety: NOT thread-safe. One owner (the daemon's engine thread) calls everything;
// others must go through it. Const methods are safe to call concurrently only while no
// non-const method runs.
//
// Invariants (CheckInvariants verifies them from scratch):
//   1. A machine is held by at most one whole-machine instance, or by GPU-granular
//      instances whose GPUs add up to at most its gpu_count; never both.
//   2. All instances of a topology-optimized batch lie in one NVLink domain.
//   4. The free-capacity indexes equal a full recount of the inventory.
//   Quota usage per (tenant, instance type) equals the GPUs its instances hold.
//
// Errors follow errors.h. Each inventory method validates fully before changing anything:
// on error nothing changed and nothing was journaled.
#ifndef NVLSCHED_ALLOCATOR_ALLOCATOR_H_
#define NVLSCHED_ALLOCATOR_ALLOCATOR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "allocator/capacity_view.h"
#include "allocator/errors.h"
#include "allocator/model.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

class FleetState;
struct PlacementScope;
class UndoJournal;

class Allocator {
 public:
  Allocator();
  ~Allocator();
  Allocator(Allocator&&) noexcept;
  Allocator& operator=(Allocator&&) noexcept;
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // How messages and a drained machine's state_reason name an instance (placement.h).
  // Without one, or when it returns "", an instance is named HandleName(handle), e.g.
  // "#12.3". It must not call back into the Allocator's non-const methods.
  void SetInstanceNamer(InstanceNamer namer);

  // ---------------------------------------------------------------- Inventory
  // Adds or updates by id. gpus_per_machine (1..kMaxGpusPerMachine) may change only while
  // no machine has the type. INVALID_ARGUMENT, FAILED_PRECONDITION.
  absl::Status UpsertInstanceType(const InstanceType& type);
  // Adds or updates (name, site, state, spare_machines) by id. Spare trays: no new
  // placement (batch, single, preemption, the queue's reservations) takes a domain's last
  // spare_machines free machines of a type; PlanReplace may. INVALID_ARGUMENT (empty id,
  // spare_machines outside 0..kMaxMachinesPerDomain). Journaled.
  absl::Status UpsertDomain(const Domain& domain);
  // Spare trays for every domain that sets no spare_machines of its own (0 until set).
  // INVALID_ARGUMENT outside 0..kMaxMachinesPerDomain. Journaled. Cost: O(domains x types).
  absl::Status SetDefaultSpareMachines(int32_t spares);
  int32_t default_spare_machines() const;
  // A domain's spare trays in force: its own spare_machines, else the fleet default; 0 for
  // an unknown index. O(1).
  int32_t EffectiveSpareMachines(DomainIndex d) const;
  // A domain's health: DEGRADED keeps new strict batches out (PlanBatch, PlanPreemption and the
  // queue's reservations for strict batches skip it; singles and cross-domain batches still go
  // there), MAINTENANCE keeps everything new out (its machines count as not READY). Running
  // instances are untouched. NOT_FOUND. Journaled. Cost: O(machines of the domain) when
  // MAINTENANCE is entered or left, else O(degraded domains).
  absl::Status SetDomainState(std::string_view domain_id, DomainState state,
                              std::string_view reason);
  // Adds a machine, or changes state / state_reason / labels of an existing one; its
  // domain, tray_index, instance type and gpu_count may change only while nothing holds
  // it. Tray indices are unique within a domain; a domain holds at most
  // kMaxMachinesPerDomain machines. INVALID_ARGUMENT, NOT_FOUND (domain, type),
  // FAILED_PRECONDITION (structural change of a held machine). wipe_pending is taken as
  // given (a CLEANING machine gets it); READY with wipe_pending is INVALID_ARGUMENT.
  absl::Status UpsertMachine(const Machine& machine);
  // Drain (MAINTENANCE / ERROR) or undrain (READY). Draining a held machine does not evict
  // anything; the machine simply never returns to the pool until READY again. READY clears
  // wipe_pending (the caller's word that it was wiped), CLEANING sets it, MAINTENANCE and
  // ERROR keep it. NOT_FOUND, INVALID_ARGUMENT.
  absl::Status SetMachineState(std::string_view machine_id, MachineState state,
                               std::string_view reason);
  // NOT_FOUND; FAILED_PRECONDITION while any instance holds it.
  absl::Status RemoveMachine(std::string_view machine_id);
  // Adds or updates by id (quota may drop below usage: nothing is evicted, new requests
  // fail). INVALID_ARGUMENT, NOT_FOUND (instance type named in the quota).
  absl::Status UpsertTenant(const Tenant& tenant);

  // ---------------------------------------------------------------- Placement
  // Plans `count` whole machines. Checks, in order: INVALID_ARGUMENT (count < 1);
  // NOT_FOUND (tenant, instance type); INVALID_ARGUMENT "infeasible" (a strict batch larger
  // than the largest domain of the type could ever hold, or than any domain's size less its
  // spare trays, or a cross-domain batch larger than the fleet of the type less its spare
  // trays); NOT_FOUND (site_id no domain is in); INVALID_ARGUMENT "infeasible" (the named
  // site has no machine of the type, or a cross-domain batch is larger than the named
  // site's, or every site's, machines of the type less their spare trays);
  // RESOURCE_EXHAUSTED quota (GetQuotaViolation); RESOURCE_EXHAUSTED capacity
  // (GetCapacityShortfall).
  // A batch never spans sites: a strict batch is in one domain, and a cross-domain batch
  // takes every machine from one site — the named one, or the site that fits it most
  // tightly (fewest placeable machines that still hold it, ties by site index), then the
  // next. No new placement takes a domain's spare trays (Domain::spare_machines).
  // Cost: strict batch O(count), independent of the fleet size (with site_id: that of
  // PlaceStrictBatch with a site filter); a cross-domain batch on a fleet of several sites
  // O(sites) more; no allocation for count <= 18 without NVLink partitions (and <= 8 sites).
  absl::StatusOr<Placement> PlanBatch(const BatchRequest& request) const;
  // Plans one instance: a whole machine (gpu_count 0, placed like a strict batch of 1) or
  // gpu_count GPUs (gpu_granular_policy.h; gpu_count == gpus_per_machine is still
  // GPU-granular: it takes a machine with every GPU free). site_id restricts the domains.
  // Errors as PlanBatch (infeasible = the type has no machines), plus INVALID_ARGUMENT for
  // gpu_count outside 0..gpus_per_machine and NOT_FOUND for an unknown site_id.
  // Cost: O(kMaxGpusPerMachine + domain size) without a site filter; no allocation.
  absl::StatusOr<Placement> PlanSingle(const SingleRequest& request) const;

  // The same, for a queued request (gang_queue.h), honoring `constraints` (placement.h):
  //   - no policy ever takes a free machine (READY, every GPU free) in a domain of
  //     constraints.excluded_domains, and only the GPU-granular policy goes there at all:
  //     strict best fit (with or without a site filter or partition affinity), whole-machine
  //     singles and FILL / MIN_DOMAINS / SPREAD never choose an excluded domain, exactly as
  //     if its machines were all drained; a GPU-granular single may take a partly held
  //     machine there (some GPUs held by GPU-granular instances), ranked by its usual rule,
  //     exactly as if only the excluded domains' free machines were drained. Indices of
  //     unknown domains and duplicates are ignored;
  //   - the quota check counts constraints.committed_quota_gpus (>= 0) on top of the tenant's
  //     usage: it refuses when usage + committed + requested > limit (the QuotaViolation's
  //     in_use_gpus is then usage + committed).
  // "infeasible" still speaks of the whole fleet (excluding a domain is not permanent); when
  // only excluded domains could take the request it is RESOURCE_EXHAUSTED capacity, with
  // shortfall counts that leave out what the request may not use there (everything, or
  // for a GPU-granular single the free machines). The overloads above are these with
  // PlanConstraints{}.
  // Cost: as above when nothing is excluded; otherwise each domain the policy looks at
  // costs O(excluded) more, and excluded domains met on the way are skipped (strict best
  // fit: O(k + excluded + buckets walked)), or for a GPU-granular single searched for a
  // partly held machine (O(its machines)). No allocation.
  absl::StatusOr<Placement> PlanBatch(const BatchRequest& request,
                                      const PlanConstraints& constraints) const;
  absl::StatusOr<Placement> PlanSingle(const SingleRequest& request,
                                       const PlanConstraints& constraints) const;
  // Records the planned instances as one batch named batch_id (empty for a single: no
  // batch) and writes the handle of the instance placed at placement.instances[i] to
  // handles[i]. REQUIRES: the placement was planned against the current state (no
  // mutation since); handles.size() == placement.size(). Cannot fail.
  // Cost: O(size), no hashing, one copy of batch_id; no allocation in steady state.
  void Apply(const Placement& placement, std::string_view batch_id,
             absl::Span<InstanceHandle> handles);

  // Plans deleting instances, all or nothing: NOT_FOUND for a stale or never-valid handle
  // (the instance was released, or rolled back), INVALID_ARGUMENT for a handle listed
  // twice. With machine_health_issue, each machine goes to MAINTENANCE instead of back to
  // the pool. Cost: O(n) handle checks, no hashing of ids; duplicates are found by a scan
  // for n <= 64 (no allocation) and with a hash set of slots above.
  // With `clean`, each machine the release leaves held by nothing gets wipe_pending (model.h),
  // in whatever state it is, and a READY one goes to CLEANING (never placed until
  // SetMachineState back to READY: the control plane wipes it first); a health issue wins
  // (MAINTENANCE, still with wipe_pending).
  absl::StatusOr<ReleasePlan> PlanRelease(absl::Span<const InstanceHandle> instances,
                                          bool machine_health_issue, bool clean = false) const;
  // REQUIRES: planned against the current state. Cannot fail. No allocation in steady
  // state without a health issue.
  void Apply(const ReleasePlan& plan);

  // ---------------------------------------------------------------- Replacement
  // Moves one instance to another machine of the same NVLink domain and type, keeping its
  // handle, batch and partitions: a whole-machine instance to the lowest-tray free machine
  // there, a GPU-granular one to the machine there with the fewest free GPUs that holds it.
  // The old machine then goes to MAINTENANCE (machine_health_issue) or, left unheld and
  // READY, to CLEANING (clean), else back to the pool; with `clean`, left unheld, it gets
  // wipe_pending in any state. NOT_FOUND (stale handle); FAILED_PRECONDITION
  // when no machine of the domain can take it (then nothing changes). Cost: O(machines of the
  // domain).
  absl::StatusOr<ReplacePlan> PlanReplace(InstanceHandle instance, bool machine_health_issue,
                                          bool clean) const;
  // REQUIRES: planned against the current state. Journaled; cannot fail.
  void Apply(const ReplacePlan& plan);

  // ---------------------------------------------------------------- Preemption
  // For an on-demand request that free capacity cannot hold now (PlanBatch / PlanSingle said
  // RESOURCE_EXHAUSTED capacity): the spot instances to evict so it fits in one NVLink domain
  // (preemption_policy.h: fewest whole gangs, then fewest spot GPU-seconds run at now_micros,
  // then lowest domain index; the requester's own tenant's gangs only if nothing else works).
  // constraints.excluded_domains are respected (reservations ahead); committed quota counts as
  // in PlanBatch. A GPU-granular single gets a whole machine freed. Errors: NOT_FOUND (tenant,
  // type), INVALID_ARGUMENT (count, gpu_count, infeasible as in PlanBatch),
  // FAILED_PRECONDITION (a spot request, or a cross-domain batch: neither preempts),
  // RESOURCE_EXHAUSTED (quota; or no domain could hold it even with its spot instances gone).
  // Cost: see preemption_policy.h; allocates only past 18 victims.
  absl::StatusOr<PreemptionPlan> PlanPreemption(const BatchRequest& request,
                                                const PlanConstraints& constraints,
                                                int64_t now_micros) const;
  absl::StatusOr<PreemptionPlan> PlanPreemption(const SingleRequest& request,
                                                const PlanConstraints& constraints,
                                                int64_t now_micros) const;
  // Marks the plan's victims preempted: they keep their machines until released (PlanRelease),
  // but no later preemption counts on them. REQUIRES: planned against the current state.
  // Journaled; cannot fail.
  void MarkPreempted(const PreemptionPlan& plan);
  // Spot-held machines of type t a preemption could free, in total and in domain d. O(1).
  int64_t ReclaimableMachines(TypeIndex t) const;
  int DomainReclaimableMachines(TypeIndex t, DomainIndex d) const;

  // ---------------------------------------------------------------- Undo journal
  // Mark() then RollbackTo(mark) restores exactly the state at Mark() (records, indexes,
  // quota usage, slot reuse order); ClearJournal() after the group is durable. NVLink
  // partition ids first seen after the mark stay interned with no instances, which is
  // unobservable. Handles: an instance released since the mark is reachable by its old
  // handle again; one added since the mark is gone and its handle stays stale for good
  // (slot generations are not rolled back). Cost: RollbackTo is O(records undone),
  // allocation-free for placements. Marks taken before a ClearJournal must not be used.
  // The journal grows until ClearJournal: call it after every successful commit (and after
  // start-up recovery).
  JournalMark Mark() const;
  void RollbackTo(JournalMark mark);
  void ClearJournal();

  // ---------------------------------------------------------------- Recovery
  // Re-inserts an instance read back from the store, on the machine it names (placement
  // rules and quota are not re-applied: what was acknowledged stands), and returns its new
  // handle. Instances restored with the same non-empty batch_id form one batch. The
  // allocator has no instance ids, so it cannot tell a duplicate: the caller keeps its ids
  // unique (the store's primary key does). NOT_FOUND (tenant, type, machine),
  // INVALID_ARGUMENT (gpu_count), FAILED_PRECONDITION when it would break invariant 1
  // (machine already held whole or partly, too many GPUs) or the machine is of another
  // type; messages describe "the restored instance" (the caller names it) and the
  // instances already there through the InstanceNamer. Strict batches spanning domains
  // (invariant 2) are reported by CheckInvariants: call it once all are restored.
  absl::StatusOr<InstanceHandle> RestoreInstance(const InstanceClaim& claim);
  // Recounts everything from the records and compares with every index. OK, or
  // FAILED_PRECONDITION for a broken invariant 1/2 (the data is wrong), or INTERNAL for an
  // index that disagrees with the recount (a bug); the message names the machine, domain,
  // batch or instance (through the InstanceNamer) at fault.
  // Cost: O(machines + instances + domains x types); allocates.
  absl::Status CheckInvariants() const;

  // ---------------------------------------------------------------- Read side
  // Pointers stay valid until the next mutation. nullptr / nullopt when unknown (for
  // FindInstance: a stale handle).
  const InstanceType* FindInstanceType(std::string_view id) const;
  const Domain* FindDomain(std::string_view id) const;
  const Machine* FindMachine(std::string_view id) const;
  const Tenant* FindTenant(std::string_view id) const;
  // Cost: O(1) to find; building the InstanceClaim copies its strings (allocates).
  std::optional<InstanceClaim> FindInstance(InstanceHandle instance) const;
  // The machine and the domain a PlacedInstance names (its `machine` and `domain`), without
  // an id lookup. References stay valid until the next mutation, like Find*'s pointers. O(1).
  // REQUIRES: the index comes from a plan made against this allocator's current state.
  const Machine& MachineAt(MachineIndex machine) const;
  const Domain& DomainAt(DomainIndex domain) const;
  // GPUs of the type the tenant holds now. NOT_FOUND.
  absl::StatusOr<int64_t> QuotaUsageGpus(std::string_view tenant_id,
                                         std::string_view instance_type_id) const;
  // GPUs of the type the tenant holds in the site (what its per-site quota counts); 0 for a
  // site no domain was ever in. NOT_FOUND as QuotaUsageGpus. O(1).
  absl::StatusOr<int64_t> SiteQuotaUsageGpus(std::string_view tenant_id,
                                             std::string_view instance_type_id,
                                             std::string_view site_id) const;

  // Iterate in index order (insertion order; machines and instances reuse freed slots).
  void ForEachInstanceType(absl::FunctionRef<void(const InstanceType&)> fn) const;
  void ForEachDomain(absl::FunctionRef<void(const Domain&)> fn) const;
  void ForEachMachine(absl::FunctionRef<void(const Machine&)> fn) const;
  void ForEachTenant(absl::FunctionRef<void(const Tenant&)> fn) const;
  void ForEachInstance(absl::FunctionRef<void(InstanceHandle, const InstanceClaim&)> fn) const;
  size_t machine_count() const;
  size_t instance_count() const;

  // Free capacity of one type. NOT_FOUND. Cost: O(1).
  absl::StatusOr<CapacityView> Capacity(std::string_view instance_type_id) const;
  // One domain's free / total counts for one type. NOT_FOUND.
  absl::StatusOr<DomainCapacity> GetDomainCapacity(std::string_view domain_id,
                                                   std::string_view instance_type_id) const;
  // Every domain that has machines of the type, in domain index order. NOT_FOUND.
  absl::Status ForEachDomainCapacity(std::string_view instance_type_id,
                                     absl::FunctionRef<void(const DomainCapacity&)> fn) const;

  // ---------------------------------------------------------------- Planning queries
  // For a planner over queued requests (gang_queue.h), which names types, tenants and
  // domains by dense index. All are const, never allocate, and take `excluded` as in
  // PlanConstraints (any order, duplicates and unknown indices ignored). "Free" machines
  // are READY and held by nothing, as for batches. An unknown TypeIndex (kNoIndex
  // included) or DomainIndex gives 0 / kNoIndex rather than undefined behavior.
  //
  // Dense index of an id, or kNoIndex when unknown. O(1) hash lookup. Indices are stable
  // (types, tenants and domains are never removed) and count up in insertion order.
  TypeIndex TypeIndexOf(std::string_view instance_type_id) const;
  TenantIndex TenantIndexOf(std::string_view tenant_id) const;
  DomainIndex DomainIndexOf(std::string_view domain_id) const;
  uint32_t domain_count() const;  // domain indices are 0..domain_count()-1
  // Most free machines of type t in any one domain not excluded (0 if none), less each
  // domain's spare trays (Domain::spare_machines), as everywhere below.
  // O(1) when none excluded; else O(excluded + buckets walked), at worst
  // O(excluded * buckets).
  int LargestFreeInDomain(TypeIndex t, absl::Span<const DomainIndex> excluded) const;
  // Free machines of type t (less spares) in all domains not excluded. O(1) + O(excluded^2).
  int64_t TotalFreeMachines(TypeIndex t, absl::Span<const DomainIndex> excluded) const;
  // Most free GPUs on one READY machine of type t not held whole (0 if none), counting in
  // excluded domains only the partly held machines (some GPUs held by GPU-granular
  // instances) and never their free ones: the largest GPU-granular single PlanSingle with
  // these exclusions places now (before site, partition affinity and quota are looked at).
  // O(kMaxGpusPerMachine) when none excluded; else O(kMaxGpusPerMachine * excluded) plus
  // O(machines) of each excluded domain with a machine of more free GPUs than found outside.
  int LargestFreeGpus(TypeIndex t, absl::Span<const DomainIndex> excluded) const;
  // Free machines of type t in domain d a placement may take (less spare trays), and machines of type t in d in any state (0 when
  // the domain has none of the type). O(1).
  int DomainFreeMachines(TypeIndex t, DomainIndex d) const;
  int DomainTotalMachines(TypeIndex t, DomainIndex d) const;
  // The domain with the most free machines of type t among the domains not excluded that
  // have at least max(min_total, 1) machines of the type in total (any state); ties by
  // lowest index; kNoIndex if none. Walks best-fit buckets from the top: O(domains with a
  // free machine walked * excluded); when every candidate has 0 free, falls back to a scan
  // for the lowest-index one, O(domains). Meant for choosing a reservation (rare).
  // `site` (kNoIndex: any) restricts the candidates to that site's domains; the walk then
  // also skips the other sites' domains.
  DomainIndex MostFreeDomain(TypeIndex t, int min_total,
                             absl::Span<const DomainIndex> excluded,
                             SiteIndex site = kNoIndex) const;
  // Dense index of a site id (kNoIndex when no domain was ever in it), and the site of a
  // domain (kNoIndex for an unknown index). O(1).
  SiteIndex SiteIndexOf(std::string_view site_id) const;
  SiteIndex SiteOfDomain(DomainIndex d) const;
  // Machines of a type in a site, in any state (0 for an unknown type or site). O(1): the
  // per-site count FleetState keeps for choosing a batch's site.
  int64_t SiteMachines(std::string_view type_id, std::string_view site_id) const;

 private:
  absl::Status PlanBatchInto(const BatchRequest& request, const PlanConstraints& constraints,
                             Placement* out) const;
  absl::Status PlanSingleInto(const SingleRequest& request, const PlanConstraints& constraints,
                              Placement* out) const;
  absl::Status PlanPreemptionInto(TenantIndex tenant, TypeIndex type, int k, bool spot,
                                  int64_t requested_gpus, const PlacementScope& scope,
                                  const PlanConstraints& constraints, int64_t now_micros,
                                  PreemptionPlan* out) const;
  absl::Status PlanReleaseInto(absl::Span<const InstanceHandle> instances,
                               bool machine_health_issue, bool clean, ReleasePlan* out) const;
  absl::Status ValidateMachine(const Machine& machine, uint32_t existing) const;
  absl::Status CheckQuota(TenantIndex tenant, TypeIndex type, int64_t requested_gpus,
                          int64_t committed_gpus) const;
  absl::Status ResolvePartitions(absl::Span<const std::string> ids,
                                 absl::InlinedVector<PartitionIndex, 4>* out) const;
  void SetMachineSpec(MachineIndex m, const Machine& spec);  // no journaling
  void SetTenantSpec(TenantIndex t, const Tenant& spec);      // no journaling
  void ReleaseClaims(absl::Span<const ClaimIndex> claims, bool machine_health_issue, bool clean);
  void Undo();  // pops and reverts one journal record

  std::unique_ptr<FleetState> state_;
  std::unique_ptr<UndoJournal> journal_;
  // Bumped by every mutation; plans carry it so Apply can assert they are current.
  uint64_t version_ = 0;
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_ALLOCATOR_H_
