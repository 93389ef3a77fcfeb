// The allocator's boundary model: plain structs with string ids (UUIDs from the daemon).
// Every member has a default initializer, so partial aggregate initialization
// (Machine{id, domain, tray, type, gpus}) is warning-free under -Wextra.
//
// Thread-safety: plain values; no shared state.
//
// The daemon converts API messages into these (daemon/api/convert.h) and these into the
// store's rows (daemon/engine/rows.h); the store itself knows only its rows. Inside the
// allocator every id is mapped once to a dense integer index; nothing on the hot path
// compares strings. All quantities are integers (GPUs, machines, micro-dollars).
#ifndef NVLSCHED_ALLOCATOR_MODEL_H_
#define NVLSCHED_ALLOCATOR_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nvlsched::allocator {

// An NVLink domain holds at most this many machines (NVL576 = 144 GB200 trays).
inline constexpr int kMaxMachinesPerDomain = 144;
// A machine has at most this many GPUs (GB200 tray: 4, HGX: 8).
inline constexpr int kMaxGpusPerMachine = 16;

// What a tenant asks for. Each machine has exactly one instance type.
struct InstanceType {
  std::string id{};
  std::string name{};        // e.g. "gb200-tray"; used in operator messages
  std::string gpu_model{};   // e.g. "GB200"
  int32_t gpus_per_machine = 0;  // 1..kMaxGpusPerMachine
  int64_t gpu_memory_mib = 0;
  int64_t price_per_hour_micros = 0;  // per machine, in micro-units of the currency
  std::string interconnect{};           // e.g. "nvlink5"
  int64_t spot_price_per_hour_micros = 0;  // 0: not sold as spot
};

// The health of an NVLink domain as operators set it (Allocator::SetDomainState).
enum class DomainState : uint8_t {
  kReady,
  kDegraded,     // NVLink fabric or partition degraded: no new strict batches; singles and
                 // cross-domain batches still go there; running instances untouched
  kMaintenance,  // nothing new at all (as if every machine were drained)
};
std::string_view DomainStateName(DomainState state);

// One NVLink domain (an NVL72 rack, or racks cabled into one fabric).
struct Domain {
  std::string id{};
  std::string name{};
  std::string site_id{};
  DomainState state = DomainState::kReady;
  std::string state_reason{};
  // Spare trays: every new placement leaves this many free machines of each instance type
  // untouched in the domain (0..kMaxMachinesPerDomain), so a failed tray can be replaced
  // inside the domain (Allocator::PlanReplace may take them; nothing else does). Absent:
  // the fleet default (Allocator::SetDefaultSpareMachines, 0 unless set).
  std::optional<int32_t> spare_machines{};
};

enum class MachineState : uint8_t {
  kReady,        // may be handed out
  kMaintenance,  // operator drain or a reported health issue; never chosen
  kError,        // broken; never chosen
  // Its last instance was released and the control plane has not yet reported it wiped
  // (Allocator::PlanRelease with clean); never chosen. Set by the allocator only.
  kCleaning,
};
std::string_view MachineStateName(MachineState state);

struct Machine {
  std::string id{};
  std::string domain_id{};
  int32_t tray_index = 0;  // position in the domain; unique within it, >= 0
  std::string instance_type_id{};
  int32_t gpu_count = 0;   // 1..gpus_per_machine of its instance type
  MachineState state = MachineState::kReady;
  std::string state_reason{};
  std::map<std::string, std::string> labels{};
  // A tenant's instance left it and the control plane has not yet reported it wiped. Set by
  // a release with `clean` (Allocator::PlanRelease, PlanReplace) that leaves the machine
  // unheld in any state, so a machine drained while held cannot skip the wipe; cleared when
  // it is set READY (the daemon does that only for a reported wipe) or upserted without it.
  // Invariants (CheckInvariants): CLEANING machines have it; a machine with it is neither
  // READY nor held. UpsertMachine sets it for a CLEANING machine.
  bool wipe_pending = false;
};

struct Tenant {
  std::string id{};
  std::string org{};
  std::string name{};
  // instance_type_id -> most machines the tenant may hold. A type missing here has quota 0
  // (not allowed). Usage is counted in GPUs: the limit is max_machines * gpus_per_machine.
  std::map<std::string, int64_t> quota{};
  // Set by the provider only (UpsertTenant, the fleet), never by the tenant's own requests.
  // Orders queued requests: a higher priority is scheduled first, equal ones by arrival.
  int32_t priority = 0;
  // (instance_type_id, site_id) -> most machines of the type the tenant may hold in that site
  // (GPUs, as for `quota`). A placement must satisfy every entry that applies: the `quota`
  // entry for all its machines of the type, and the site's entry for those in the site.
  // A type with per-site entries but none in `quota` has no fleet-wide limit, and may then be
  // used only in the sites it has entries for.
  std::map<std::pair<std::string, std::string>, int64_t> site_quota{};
};

// One instance as the allocator sees it: a claim on a whole machine or on some of its GPUs.
// What RestoreInstance takes and FindInstance / ForEachInstance give back. It carries no
// instance id: the allocator names instances by InstanceHandle (placement.h), and the
// caller keeps its own ids.
struct InstanceClaim {
  std::string tenant_id{};
  std::string instance_type_id{};
  std::string machine_id{};
  int32_t gpu_count = 0;      // GPUs held (the machine's gpu_count when whole_machine)
  bool whole_machine = true;
  // The batch it was created with; empty for a single instance. Instances restored with
  // the same batch_id form one batch again (invariant 2 is checked over it).
  std::string batch_id{};
  std::vector<std::string> nvlink_partition_ids{};
  // True for instances of a topology-optimized (strict) batch and for singles: all
  // instances of a strict batch must lie in one NVLink domain (invariant 2). False for
  // instances of a cross-domain batch. Persist it: CheckInvariants needs it after restart.
  bool topology_optimized = true;
  // Spot billing (BatchRequest::spot), whether a preemption already chose it as a victim
  // (Allocator::MarkPreempted: it holds its machine until released, but no other preemptor
  // may count on it), and when it was placed (Placement::started_micros): what preemption
  // weighs. Persist all three.
  bool spot = false;
  bool preempted = false;
  int64_t started_micros = 0;
};

// How a cross-domain batch (topology_optimized = false) spreads over domains.
enum class SpreadPolicy : uint8_t {
  kFill,        // least-free domains first: fragments get used, whole domains stay whole
  kMinDomains,  // fewest domains: most-free domains first
  kSpread,      // as many distinct domains as possible, round-robin (failure isolation)
};
std::string_view SpreadPolicyName(SpreadPolicy policy);

// count whole machines of one instance type, atomically.
struct BatchRequest {
  std::string tenant_id{};
  std::string instance_type_id{};
  int32_t count = 0;
  bool topology_optimized = true;  // all in one NVLink domain
  SpreadPolicy spread_policy = SpreadPolicy::kFill;  // used only when !topology_optimized
  std::vector<std::string> nvlink_partition_ids{};
  // Billing: a spot batch may be preempted (evicted whole) to make room for an on-demand
  // request (preemption_policy.h); spot never preempts.
  bool spot = false;
  // With topology_optimized = false: every domain the batch uses gets exactly this many
  // machines (count a multiple of it), e.g. 32 = 16 + 16 instead of 18 + 14. 0: no segments
  // (spread_policy decides). cross_domain_policy.h: PlaceSegmented.
  int32_t segment_size = 0;
  // Empty: any site. A batch never spans sites: a strict batch's domain, and every domain of
  // a cross-domain batch, is in this site, or (empty) in the one site chosen for it.
  std::string site_id{};
};

// One instance: a whole machine (gpu_count = 0) or gpu_count GPUs of one machine.
struct SingleRequest {
  std::string tenant_id{};
  std::string instance_type_id{};
  int32_t gpu_count = 0;  // 0 = whole machine
  std::string site_id{};    // empty = any site
  std::vector<std::string> nvlink_partition_ids{};
  bool spot = false;        // as BatchRequest::spot
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_MODEL_H_
