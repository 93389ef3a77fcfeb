// ReferenceModel: an independent, brute-force statement of the placement rules, for the
// randomized test. No indexes, no incremental counters: every decision scans all machines
// and sorts candidates by an explicit key written straight from DESIGN.md and issue 3.
// It is a value type, so "rollback" in the test is just restoring a copy.
#ifndef NVLSCHED_TESTS_ALLOCATOR_REFERENCE_MODEL_H_
#define NVLSCHED_TESTS_ALLOCATOR_REFERENCE_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "allocator/errors.h"
#include "allocator/model.h"

namespace nvlsched::allocator::testing {

class ReferenceModel {
 public:
  // The outcome of planning: a status code, and either the chosen machines (in order,
  // with GPUs held) or the details of a RESOURCE_EXHAUSTED.
  struct Decision {
    absl::StatusCode code = absl::StatusCode::kOk;
    std::vector<std::string> machines;
    std::vector<int> gpus;
    bool whole = true;
    bool strict = true;
    std::optional<CapacityShortfall> shortfall;
    std::optional<QuotaViolation> quota;
    // What Apply needs to record.
    std::string tenant;
    std::string type;
    std::vector<std::string> partitions;
    bool spot = false;
  };

  // A live instance.
  struct Claim {
    std::string id;
    std::string tenant;
    int type;
    std::string machine;
    int gpus;
    bool whole;
    std::string batch;
    bool strict;
    std::vector<std::string> partitions;
    bool spot = false;
    bool preempted = false;  // chosen by a preemption (MarkPreempted)
    int64_t started_micros = 0;
  };

  // The fewest spot gangs an on-demand request for k whole machines of `type` must evict to
  // fit in one domain (site, partition affinity and exclusions as for placement).
  struct PreemptionBound {
    bool possible = false;    // some domain holds k once its reclaimable machines are freed
    int gangs = 0;            // the fewest gangs over those domains
    bool own_tenant = false;  // possible only with gangs of the requester's own tenant
  };

  void AddType(const std::string& id, int gpus_per_machine);
  // `spare_machines`: the domain's own setting; nullopt follows the fleet default.
  void AddDomain(const std::string& id, const std::string& site,
                 std::optional<int> spare_machines = std::nullopt);
  // Spare trays: no new placement takes a domain's last spares of a type (a GPU-granular
  // single opens no free machine then); a replacement may. A domain's spares are its own
  // setting, else the fleet default (0 until set).
  void SetSpares(const std::string& id, std::optional<int> spare_machines);
  void SetDefaultSpares(int spare_machines) { default_spares_ = spare_machines; }
  // DEGRADED keeps strict batches out (whole-machine singles, cross-domain batches and
  // GPU-granular singles still go there); MAINTENANCE keeps everything new out.
  absl::StatusCode SetDomainState(const std::string& id, DomainState state);
  void AddTenant(const std::string& id, const std::map<std::string, int64_t>& quota);
  void AddMachine(const std::string& id, const std::string& domain, int tray,
                  const std::string& type, int gpus);
  // The same outcome codes the allocator must give.
  absl::StatusCode SetState(const std::string& id, MachineState state);
  absl::StatusCode Remove(const std::string& id);

  // pinned: a domain id (PlanConstraints::pinned_domain) the placement must use; it replaces
  // partition affinity.
  Decision PlanBatch(const BatchRequest& request, const std::string& pinned = "") const;
  Decision PlanSingle(const SingleRequest& request, const std::string& pinned = "") const;
  void Apply(const Decision& decision, const std::vector<std::string>& ids, const std::string& batch,
             int64_t started_micros = 0);
  // clean: a machine the release leaves held by nothing, READY, goes to CLEANING (a health
  // issue wins: MAINTENANCE).
  absl::StatusCode Release(const std::vector<std::string>& ids, bool health_issue,
                           bool clean = false);
  // ReplaceInstance: the instance moves inside its domain to a machine of its type — whole:
  // the lowest-tray free machine with the same GPU count; GPU-granular: the machine with the
  // fewest free GPUs that holds it (lowest tray on a tie). The old machine goes to MAINTENANCE
  // (health issue, held or not) or, READY and left unheld, to CLEANING (clean).
  // FAILED_PRECONDITION (no machine; nothing changes), NOT_FOUND. `to`: the new machine.
  struct Replaced {
    absl::StatusCode code = absl::StatusCode::kOk;
    std::string to;
  };
  Replaced Replace(const std::string& id, bool health_issue, bool clean);

  // Preemption, stated by brute force: every domain, every gang, a 0/1 knapsack for the
  // fewest gangs (no ordering argument); the requester's own gangs only if nothing else works.
  // strict_batch: DEGRADED domains are left out (a strict batch never goes there).
  PreemptionBound FewestGangs(const std::string& tenant, const std::string& type, int k,
                              const std::string& site, const std::vector<std::string>& partitions,
                              const std::vector<std::string>& excluded,
                              bool strict_batch = false) const;
  // REQUIRES: live spot instances.
  void MarkPreempted(const std::vector<std::string>& ids);
  const Claim* FindClaim(const std::string& id) const;  // nullptr when not live
  // Live instances of a batch (non-empty id).
  std::vector<std::string> BatchMembers(const std::string& batch) const;
  // Free machines (READY, held by nothing) of a type in a domain.
  int FreeMachines(const std::string& type, const std::string& domain) const;
  // The same less the domain's spare trays: what a new placement may take.
  int PlaceableMachines(const std::string& type, const std::string& domain) const;

  bool HasMachine(const std::string& id) const;
  // Machines in a state (sorted ids), e.g. the CLEANING ones a control plane would wipe.
  std::vector<std::string> MachinesIn(MachineState state) const;
  // Trays in use in a domain (to add machines at free trays).
  std::set<int> TraysOf(const std::string& domain) const;
  // Canonical text of machines and instances, comparable with the allocator's.
  std::string Describe() const;
  std::vector<std::string> LiveInstanceIds() const;

 private:
  struct Type { std::string id; int gpus; };
  struct DomainRow {
    std::string id;
    std::string site;
    DomainState state = DomainState::kReady;
    std::optional<int> own_spares;  // nullopt: default_spares_
  };
  struct MachineRow {
    std::string id;
    int domain;
    int tray;
    int type;
    int gpus;
    MachineState state = MachineState::kReady;
    // Holdings, updated by Apply / Release (so decisions need not rescan every claim).
    int whole = 0;     // whole-machine instances on it
    int granular = 0;  // GPUs held by GPU-granular instances
    int claims = 0;    // instances of any kind
  };
  void Count(const Claim& claim, int delta);
  int TypeOf(const std::string& id) const;
  int DomainOf(const std::string& id) const;
  const MachineRow* FindMachine(const std::string& id) const;
  MachineRow* MutableMachine(const std::string& id);
  // READY in a domain not in MAINTENANCE: may take new instances.
  bool Open(const MachineRow& m) const;
  bool FreeWhole(const MachineRow& m) const;
  int FreeGpus(const MachineRow& m) const;
  int FreeIn(int type, int domain) const;
  // FreeIn less the domain's spares (never below 0): every placement decision reads this.
  int PlaceableIn(int type, int domain) const;
  // The domain's spare trays in force, and its machines of the type less them (never below 0).
  int SparesIn(int domain) const { return domains_[domain].own_spares.value_or(default_spares_); }
  int CapacityIn(int type, int domain) const;
  int TotalIn(int type, int domain) const;
  std::set<int> AffinityDomains(const std::vector<std::string>& partitions) const;
  int64_t UsedGpus(const std::string& tenant, int type) const;
  std::optional<QuotaViolation> CheckQuota(const std::string& tenant, int type, int64_t gpus) const;
  std::vector<std::string> LowestFreeTrays(int type, int domain, int n) const;
  // The domains a single-domain placement may use: site, then the pinned domain, else
  // partition affinity.
  std::set<int> BoundDomains(const std::vector<std::string>& partitions,
                             const std::string& pinned) const;
  // strict_batch: DEGRADED domains are left out, from the shortfall's counts too.
  Decision StrictDecision(int type, int k, const std::string& site,
                          const std::vector<std::string>& partitions, const std::string& pinned,
                          bool strict_batch) const;
  Decision GpuDecision(int type, int g, const std::string& site,
                       const std::vector<std::string>& partitions,
                       const std::string& pinned) const;
  // Over the domains of `site` (empty: every domain).
  Decision CrossDecision(int type, int k, SpreadPolicy policy, const std::string& site = "") const;
  // segment_size > 0: k / segment domains of `site` (empty: any) with `segment` free machines
  // each, the lowest trays of each; domains holding one of the partitions first (by index),
  // then the tightest fit (fewest free machines, then lowest index).
  Decision SegmentDecision(int type, int k, int segment, const std::vector<std::string>& partitions,
                           const std::string& site) const;
  // A batch never spans sites: sites in the order their first domain was added, with the
  // type's machines in each.
  std::vector<std::pair<std::string, int64_t>> SitesWithType(int type) const;

  std::vector<Type> types_;
  std::vector<DomainRow> domains_;
  int default_spares_ = 0;  // SetDefaultSpares
  std::set<std::string> sites_;
  std::map<std::string, std::map<std::string, int64_t>> tenants_;
  std::vector<MachineRow> machines_;  // live machines only, in no particular order
  std::vector<Claim> claims_;         // live instances
};

}  // namespace nvlsched::allocator::testing

#endif  // NVLSCHED_TESTS_ALLOCATOR_REFERENCE_MODEL_H_
