#include "bench/startup/gendb.h"

#include <algorithm>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon/api/convert.h"
#include "daemon/api/fleet.h"
#include "daemon/api/validation.h"
#include "daemon/engine/instance_ops.h"
#include "daemon/engine/inventory_ops.h"
#include "daemon/engine/requests.h"
#include "daemon/engine/state.h"
#include "daemon/services/instance_requests.h"
#include "nvlsched/v1/instance_service.pb.h"
#include "nvlsched/v1/inventory_service.pb.h"

namespace nvlsched::bench {
namespace {

using daemon::NameBasedUuid;
using daemon::OpContext;
using daemon::State;

// A waiting single that expires: its queue_timeout, and how many wait at once before one
// queue pass expires them all (each create runs a pass over what waits, so keep it small).
constexpr absl::Duration kExpiringTimeout = absl::Minutes(1);
constexpr int kExpiringPerPass = 50;
// The longest queue_timeout the daemon accepts by default (--max_queue_timeout): the queued
// requests left at the end are still waiting when the daemon starts.
constexpr absl::Duration kWaitingTimeout = absl::Hours(7 * 24);

absl::Status Annotate(const absl::Status& status, absl::string_view doing) {
  return absl::Status(status.code(), absl::StrCat("nvlsched-gendb: ", doing, ": ",
                                                  status.message()));
}

absl::Status CheckOption(const char* name, int64_t value, int64_t min, int64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("GenDbOptions.", name, " must be within ", min,
                                                 "..", max, " (got ", value, ")"));
}

struct TenantRef {
  std::string id;
  std::string org;
};

class Generator {
 public:
  Generator(store::Store& store, const GenDbOptions& options)
      : store_(store), options_(options), rng_(options.seed),
        now_(options.start_time) {}

  absl::StatusOr<GenDbReport> Run() {
    if (absl::Status s = ApplyTheFleet(); !s.ok()) return s;
    const int64_t machines =
        static_cast<int64_t>(options_.domains) * options_.machines_per_domain;
    const int64_t batch_domains =
        options_.batch_domain_every > 0 ? options_.domains / options_.batch_domain_every : 0;
    // Placed instances when the fleet is full.
    const int64_t full = batch_domains * options_.machines_per_domain +
                         (machines - batch_domains * options_.machines_per_domain) *
                             options_.gpus_per_machine;
    const int64_t placed_target = std::min(options_.instances, full);
    const int64_t unplaced = options_.instances - placed_target;
    const int64_t queued_target = std::min(options_.queued, unplaced);
    const int64_t expired_target = unplaced - queued_target;

    if (absl::Status s = PlaceInstances(placed_target); !s.ok()) return s;
    if (absl::Status s = ExpireSingles(expired_target); !s.ok()) return s;
    if (absl::Status s = QueueSingles(queued_target); !s.ok()) return s;
    if (absl::Status s = Commit(); !s.ok()) return s;

    report_.domains = options_.domains;
    report_.machines = machines;
    report_.tenants = static_cast<int64_t>(tenants_.size());
    for (const auto& [id, entry] : state_.instances()) {
      ++report_.instances;
      if (entry.record->status() == v1::INSTANCE_STATUS_QUEUED) {
        ++report_.queued;
      } else if (entry.record->status() == v1::INSTANCE_STATUS_TERMINATED) {
        ++report_.terminated;
      } else {
        ++report_.placed;
      }
    }
    return report_;
  }

 private:
  OpContext Tick() {
    now_ += absl::Milliseconds(3);
    return OpContext{now_, rng_};
  }

  // The engine's group commit: the net rows of everything changed since the last one.
  absl::Status Commit() {
    store::ChangeSet changes = state_.ChangesSince(mark_);
    if (absl::Status s = store_.Commit(changes); !s.ok()) return Annotate(s, "committing");
    state_.ClearJournal();
    mark_ = state_.Mark();
    uncommitted_ = 0;
    ++report_.commits;
    return absl::OkStatus();
  }

  absl::Status CommitIfDue() {
    return uncommitted_ >= options_.records_per_commit ? Commit() : absl::OkStatus();
  }

  // The fleet nvlsched-fleet makes for this shape, with `tenants` tenants, applied as
  // --seed_fleet applies it.
  absl::Status ApplyTheFleet() {
    daemon::FleetShape shape;
    shape.domains = options_.domains;
    shape.machines_per_domain = options_.machines_per_domain;
    shape.gpus_per_machine = options_.gpus_per_machine;
    shape.tenant_org = "gendb-org-0";
    absl::StatusOr<v1::Fleet> fleet = daemon::GenerateFleet(shape);
    if (!fleet.ok()) return Annotate(fleet.status(), "generating the fleet");
    if (fleet->instance_types_size() != 1 || fleet->tenants_size() != 1) {
      return absl::InternalError("nvlsched-gendb: GenerateFleet made other than one type and tenant");
    }
    type_id_ = fleet->instance_types(0).id();
    const v1::Tenant first = fleet->tenants(0);
    for (int t = 1; t < options_.tenants; ++t) {
      v1::Tenant* tenant = fleet->add_tenants();
      *tenant = first;
      const std::string org = absl::StrCat("gendb-org-", t);
      tenant->set_id(NameBasedUuid(absl::StrCat("tenant/", org)));
      tenant->set_org(org);
      tenant->set_name(org);
    }
    for (const v1::Tenant& tenant : fleet->tenants()) tenants_.push_back({tenant.id(), tenant.org()});

    v1::ApplyFleetRequest request;
    *request.mutable_fleet() = *std::move(fleet);
    if (absl::Status s = daemon::ValidateApplyFleetRequest(request, daemon::ValidationContext{});
        !s.ok()) {
      return Annotate(s, "validating the fleet");
    }
    v1::ApplyFleetResponse response;
    if (absl::Status s = daemon::ApplyFleet(state_, request, &response); !s.ok()) {
      return Annotate(s, "applying the fleet");
    }
    return Commit();
  }

  const TenantRef& PickTenant() {
    return tenants_[std::uniform_int_distribution<size_t>(0, tenants_.size() - 1)(rng_)];
  }

  // The fields a tenant's tooling sends with every create, sized like real requests.
  template <typename Request>
  void FillCommon(const TenantRef& tenant, int64_t serial, Request* req) {
    const int64_t team = serial % 37;
    req->set_org(tenant.org);
    req->set_tenant_id(tenant.id);
    req->set_instance_type_id(type_id_);
    req->set_description(absl::StrCat("training worker for team ", team, ", job ", serial / 64));
    (*req->mutable_labels())["team"] = absl::StrCat("team-", team);
    (*req->mutable_labels())["job"] = absl::StrCat("job-", serial / 64);
    (*req->mutable_labels())["env"] = serial % 5 == 0 ? "staging" : "prod";
    req->set_vpc_id(NameBasedUuid(absl::StrCat("vpc/", tenant.org)));
    v1::InterfaceCreateRequest* itf = req->add_interfaces();
    itf->set_subnet_id(NameBasedUuid(absl::StrCat("subnet/", tenant.org, "/", team)));
    itf->set_is_physical(true);
    req->set_operating_system_id(NameBasedUuid("os/ubuntu-22.04-cuda-12"));
    req->set_user_data(absl::StrCat(
        "#cloud-config\nruncmd:\n  - [ /opt/agent/bin/register, --team, team-", team,
        ", --job, job-", serial / 64, " ]\n  - [ systemctl, enable, --now, dcgm-exporter ]\n"));
    req->add_ssh_key_group_ids(NameBasedUuid(absl::StrCat("ssh-keys/", tenant.org)));
  }

  // The control plane's reports for a placed instance: most reach READY, some are still on
  // their way.
  absl::Status ReportLifecycle(const v1::Instance& instance, const std::string& org) {
    const int roll = std::uniform_int_distribution<int>(0, 99)(rng_);
    std::vector<std::pair<v1::InstanceStatus, const char*>> steps;
    if (roll >= 5) steps.push_back({v1::INSTANCE_STATUS_PROVISIONING, "imaging the machine"});
    if (roll >= 10) {
      steps.push_back({v1::INSTANCE_STATUS_CONFIGURING, "applying cloud-init"});
      steps.push_back({v1::INSTANCE_STATUS_READY, "ready: agent registered"});
    }
    for (const auto& [status, message] : steps) {
      daemon::StatusUpdate update{daemon::InstanceRef{org, instance.id()}, status, message};
      v1::Instance resp;
      if (absl::Status s = daemon::UpdateInstanceStatus(state_, Tick(), update, &resp); !s.ok()) {
        return Annotate(s, absl::StrCat("reporting ", instance.id(), " ",
                                        v1::InstanceStatus_Name(status)));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<v1::Instance> CreateSingle(const TenantRef& tenant, bool spot,
                                            absl::Duration queue_timeout) {
    const int64_t serial = serial_++;
    v1::CreateInstanceRequest req;
    FillCommon(tenant, serial, &req);
    req.set_name(absl::StrCat("worker-", serial));
    req.set_gpu_count(1);
    req.set_billing_mode(spot ? v1::BILLING_MODE_SPOT : v1::BILLING_MODE_ON_DEMAND);
    if (queue_timeout > absl::ZeroDuration()) {
      *req.mutable_queue_timeout() = daemon::ToDurationProto(queue_timeout);
    }
    absl::StatusOr<daemon::CreateRequest> core = daemon::ToCreateRequest(req);
    if (!core.ok()) return Annotate(core.status(), "validating a CreateInstanceRequest");
    v1::Instance resp;
    if (absl::Status s = daemon::CreateInstance(state_, Tick(), *core, &resp); !s.ok()) {
      return Annotate(s, absl::StrCat("creating single ", req.name()));
    }
    ++uncommitted_;
    return resp;
  }

  absl::Status CreateBatch(const TenantRef& tenant) {
    const int64_t serial = serial_++;
    v1::BatchCreateInstancesRequest req;
    FillCommon(tenant, serial, &req);
    req.set_name_prefix(absl::StrCat("train-", serial));
    req.set_count(options_.machines_per_domain);
    req.set_topology_optimized(true);
    const std::string partition = NameBasedUuid(absl::StrCat("nvlink-partition/", serial));
    for (int gpu = 0; gpu < options_.gpus_per_machine; ++gpu) {
      v1::InfiniBandInterfaceCreateRequest* ib = req.add_infiniband_interfaces();
      ib->set_partition_id(NameBasedUuid(absl::StrCat("ib-partition/", tenant.org)));
      ib->set_device(absl::StrCat("mlx5_", gpu));
      ib->set_device_instance(gpu);
      v1::NVLinkInterfaceCreateRequest* nv = req.add_nv_link_interfaces();
      nv->set_nv_link_logical_partition_id(partition);
      nv->set_device_instance(gpu);
    }
    daemon::ValidationContext context;
    context.max_batch_count = std::max(18, options_.machines_per_domain);
    absl::StatusOr<daemon::CreateRequest> core = daemon::ToCreateRequest(req, context);
    if (!core.ok()) return Annotate(core.status(), "validating a BatchCreateInstancesRequest");
    v1::BatchCreateInstancesResponse resp;
    if (absl::Status s = daemon::BatchCreateInstances(state_, Tick(), *core, &resp); !s.ok()) {
      return Annotate(s, absl::StrCat("creating batch ", req.name_prefix()));
    }
    uncommitted_ += resp.instances_size();
    for (const v1::Instance& instance : resp.instances()) {
      if (absl::Status s = ReportLifecycle(instance, tenant.org); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Domain by domain: a strict batch on every batch_domain_every-th, singles on the others
  // (the planner chooses the machines: best fit packs them four to a machine).
  absl::Status PlaceInstances(int64_t target) {
    int64_t placed = 0;
    for (int d = 0; d < options_.domains && placed < target; ++d) {
      const bool batch_domain = options_.batch_domain_every > 0 &&
                                d % options_.batch_domain_every == options_.batch_domain_every - 1;
      if (batch_domain && target - placed >= options_.machines_per_domain) {
        if (absl::Status s = CreateBatch(PickTenant()); !s.ok()) return s;
        placed += options_.machines_per_domain;
      } else if (!batch_domain) {
        const int64_t singles = std::min<int64_t>(
            target - placed,
            static_cast<int64_t>(options_.machines_per_domain) * options_.gpus_per_machine);
        for (int64_t i = 0; i < singles; ++i) {
          const TenantRef& tenant = PickTenant();
          const bool spot =
              std::uniform_int_distribution<int>(0, 99)(rng_) < options_.spot_percent;
          absl::StatusOr<v1::Instance> created = CreateSingle(tenant, spot, absl::ZeroDuration());
          if (!created.ok()) return created.status();
          if (absl::Status s = ReportLifecycle(*created, tenant.org); !s.ok()) return s;
        }
        placed += singles;
      }
      if (absl::Status s = CommitIfDue(); !s.ok()) return s;
    }
    if (placed != target) {
      return absl::InternalError(absl::StrCat("nvlsched-gendb: placed ", placed, " of ", target,
                                              " instances"));
    }
    return absl::OkStatus();
  }

  // Spot singles that queue on the full fleet and expire unplaced (TERMINATED records).
  absl::Status ExpireSingles(int64_t count) {
    int64_t done = 0;
    while (done < count) {
      const int64_t wave = std::min<int64_t>(kExpiringPerPass, count - done);
      for (int64_t i = 0; i < wave; ++i) {
        absl::StatusOr<v1::Instance> created =
            CreateSingle(PickTenant(), /*spot=*/true, kExpiringTimeout);
        if (!created.ok()) return created.status();
        if (created->status() != v1::INSTANCE_STATUS_QUEUED) {
          return absl::InternalError(absl::StrCat(
              "nvlsched-gendb: single ", created->name(), " was placed, not queued: the fleet "
              "is not full"));
        }
      }
      now_ += kExpiringTimeout + absl::Seconds(1);
      const State::QueuePass pass = state_.RunQueue(now_);
      if (pass.expired != wave || pass.placed != 0) {
        return absl::InternalError(absl::StrCat("nvlsched-gendb: a queue pass expired ",
                                                pass.expired, " and placed ", pass.placed,
                                                " of ", wave, " waiting singles"));
      }
      done += wave;
      if (absl::Status s = CommitIfDue(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Spot singles still waiting when the daemon starts (QUEUED records).
  absl::Status QueueSingles(int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      absl::StatusOr<v1::Instance> created =
          CreateSingle(PickTenant(), /*spot=*/true, kWaitingTimeout);
      if (!created.ok()) return created.status();
      if (created->status() != v1::INSTANCE_STATUS_QUEUED) {
        return absl::InternalError(absl::StrCat("nvlsched-gendb: single ", created->name(),
                                                " was placed, not queued"));
      }
      if (absl::Status s = CommitIfDue(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  store::Store& store_;
  const GenDbOptions options_;
  std::mt19937_64 rng_;
  absl::Time now_;
  State state_;
  State::JournalMark mark_ = state_.Mark();
  std::string type_id_;
  std::vector<TenantRef> tenants_;
  int64_t serial_ = 0;
  int64_t uncommitted_ = 0;
  GenDbReport report_;
};

}  // namespace

absl::StatusOr<GenDbReport> GenerateDatabase(store::Store& store, const GenDbOptions& options) {
  for (absl::Status s : {
           CheckOption("domains", options.domains, 1, 100000),
           CheckOption("machines_per_domain", options.machines_per_domain, 1, 144),
           CheckOption("gpus_per_machine", options.gpus_per_machine, 1, 16),
           CheckOption("instances", options.instances, 0, 10000000),
           CheckOption("tenants", options.tenants, 1, 1000),
           CheckOption("batch_domain_every", options.batch_domain_every, 0, 100000),
           CheckOption("queued", options.queued, 0, 100000),
           CheckOption("spot_percent", options.spot_percent, 0, 100),
           CheckOption("records_per_commit", options.records_per_commit, 1, 10000000),
       }) {
    if (!s.ok()) return s;
  }
  Generator generator(store, options);
  return generator.Run();
}

}  // namespace nvlsched::bench
