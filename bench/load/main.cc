// nvlsched-load: a gRPC load generator against a running nvlschedd. See kUsage.
#include <cstdlib>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "bench/load/load_options.h"
#include "bench/load/load_runner.h"
#include "bench/load/report.h"
#include "daemon/api/fleet.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "nvlschedd address (host:port)");
ABSL_FLAG(std::string, token, "",
          "bearer token for a daemon with --auth=tokens|jwt (default: $NVLSCHED_TOKEN)");
ABSL_FLAG(std::string, fleet_file, "",
          "fleet file the daemon was seeded with (nvlsched-fleet output): org, tenant and "
          "instance type ids are read from it unless given by the flags below");
ABSL_FLAG(std::string, org, "", "tenant org (default: the fleet file's first tenant, or 'demo')");
ABSL_FLAG(std::string, tenant_id, "",
          "tenant id (default: the fleet file's tenant of --org, or the demo tenant)");
ABSL_FLAG(std::string, instance_type_id, "",
          "instance type id (default: the fleet file tenant's first quota type, or the demo "
          "type)");
ABSL_FLAG(std::string, workload, "batch", "batch | single | mixed | noop");
ABSL_FLAG(int, concurrency, 64,
          "calls in flight (closed loop); with --rate, the cap on calls in flight");
ABSL_FLAG(double, rate, 0,
          "calls per second on a fixed schedule, whatever the completions (open loop); latency "
          "is measured from each call's intended send time. 0: closed loop, each of "
          "--concurrency slots sending its next call when its previous one completes");
ABSL_FLAG(int, readers, 0,
          "extra clients calling InstanceService/ListInstances of --org during the run, each "
          "with one call in flight, walking every page and starting over; reported apart from "
          "the workload");
ABSL_FLAG(int, read_page_size, 500, "--readers: ListInstances page size (1..1000)");
ABSL_FLAG(int, watchers, 0,
          "EventService/WatchEvents streams held open during the run, reading every event "
          "(what watchers cost the write path)");
ABSL_FLAG(std::string, watch_org, "", "the org the watchers watch (empty: every org)");
ABSL_FLAG(int, threads, 2, "client threads, each with its own connection and completion queue");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "stop issuing calls after this long");
ABSL_FLAG(int64_t, max_calls, 200000, "stop issuing calls after this many");
ABSL_FLAG(absl::Duration, call_timeout, absl::Seconds(5), "deadline of every call");
ABSL_FLAG(int, hold, 100,
          "a batch (single) is deleted once this many newer batches (singles) exist; each "
          "client thread keeps its share (hold / threads) in its own FIFO");
ABSL_FLAG(int, min_count, 2, "smallest batch (uniform in [min_count, max_count])");
ABSL_FLAG(int, max_count, 18, "largest batch (the daemon's --max_batch_count is 18 by default)");
ABSL_FLAG(int, min_gpus, 1, "smallest single, in GPUs");
ABSL_FLAG(int, max_gpus, 4, "largest single, in GPUs");
ABSL_FLAG(double, single_fraction, 0.5, "mixed: share of creates that are singles");
ABSL_FLAG(uint64_t, seed, 1, "random seed (batch sizes, GPU counts, mixed choices)");
ABSL_FLAG(bool, cleanup, true, "after the run, delete what is still held (not measured)");
ABSL_FLAG(bool, compare_noop, false,
          "also run the noop workload with the same limits and print the calls/s ratio");
ABSL_FLAG(bool, json, false, "print the report as JSON instead of text");

namespace {

constexpr char kUsage[] = R"(drive a running nvlschedd with many concurrent gRPC calls.

Workloads (--workload):
  batch   BatchCreateInstances, count uniform in [--min_count, --max_count], strict (one NVLink
          domain); each batch is held until --hold newer batches exist, then deleted with one
          BatchDeleteInstances call.
  single  CreateInstance with gpu_count uniform in [--min_gpus, --max_gpus]; held likewise,
          then deleted with DeleteInstance.
  mixed   both, a create being a single with probability --single_fraction (separate holds).
  noop    grpc.health.v1.Health/Check: the transport's ceiling.
The run stops issuing calls at --duration or --max_calls, whichever comes first. A
RESOURCE_EXHAUSTED refusal (capacity or quota) is an outcome, reported by code, not an error.

Closed loop (default): --concurrency calls in flight, each slot sending its next call as soon
as its previous one completes; a slow daemon slows the client down with it.
Open loop (--rate=N): call n is sent at start + n/N whatever the completions, and its latency
runs from that intended time (no coordinated omission, as in wrk2). --concurrency caps the
calls in flight: a call due with every slot busy waits for one and is reported "late"; those
still waiting when the run ends are never sent and reported "skipped". The report holds the
achieved rate against the target and the service time (from the actual send).
Readers (--readers=N): N clients walk ListInstances (--read_page_size) as fast as they can
during the run, reported in their own section; the workload's numbers are the writes only.

The batch fleet: 100 NVLink domains x 18 machines, tenant quota = every machine:
  nvlsched-fleet --domains=100 --machines_per_domain=18 --out=/tmp/fleet-100x18.json
  nvlschedd --listen=127.0.0.1:50051 --db=/tmp/load.db --seed_fleet=/tmp/fleet-100x18.json \
      --require_cleaning=false [--sync=normal]
(--require_cleaning=false: the load deletes and creates again at once, with no control plane
to wipe machines; with the default every deleted machine would wait for CompleteCleaning.)
  nvlsched-load --fleet_file=/tmp/fleet-100x18.json --workload=batch --compare_noop
Generated fleets derive their ids from names, so --fleet_file is needed to use the same
tenant and instance type as the daemon. Without it the demo fleet's ids are used
(nvlschedd --seed_fleet=demo: 144 machines, quota 72, so most batches are refused).
Start the daemon with a fresh --db for every measurement.)";

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "nvlsched-load: %s\n", std::string(status.message()).c_str());
  return 1;
}

// Fills org, tenant and instance type from the flags, then the fleet file, then the demo.
absl::Status ResolveIds(nvlsched::load::LoadOptions& options) {
  options.org = absl::GetFlag(FLAGS_org);
  options.tenant_id = absl::GetFlag(FLAGS_tenant_id);
  options.instance_type_id = absl::GetFlag(FLAGS_instance_type_id);
  const std::string fleet_file = absl::GetFlag(FLAGS_fleet_file);
  if (!fleet_file.empty()) {
    absl::StatusOr<nvlsched::v1::Fleet> fleet = nvlsched::daemon::ReadFleetFile(fleet_file);
    if (!fleet.ok()) return fleet.status();
    const nvlsched::v1::Tenant* tenant = nullptr;
    for (const nvlsched::v1::Tenant& t : fleet->tenants()) {
      if (options.org.empty() || t.org() == options.org) {
        tenant = &t;
        break;
      }
    }
    if (tenant == nullptr) {
      return absl::NotFoundError(absl::StrCat(fleet_file, " has no tenant",
                                              options.org.empty() ? "" : " of org ", options.org));
    }
    if (options.org.empty()) options.org = tenant->org();
    if (options.tenant_id.empty()) options.tenant_id = tenant->id();
    if (options.instance_type_id.empty()) {
      if (tenant->quotas_size() > 0) {
        options.instance_type_id = tenant->quotas(0).instance_type_id();
      } else if (fleet->instance_types_size() > 0) {
        options.instance_type_id = fleet->instance_types(0).id();
      }
    }
  }
  if (options.org.empty()) options.org = std::string(nvlsched::daemon::kDemoTenantOrg);
  if (options.tenant_id.empty()) options.tenant_id = std::string(nvlsched::daemon::kDemoTenantId);
  if (options.instance_type_id.empty()) {
    options.instance_type_id = std::string(nvlsched::daemon::kDemoInstanceTypeId);
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  // --help lists the flags of the files named like the binary; ours live in main.cc.
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "bench/load/main.cc");
  };
  usage_config.contains_helpshort_flags = usage_config.contains_help_flags;
  absl::SetFlagsUsageConfig(usage_config);
  absl::SetProgramUsageMessage(kUsage);
  absl::ParseCommandLine(argc, argv);

  nvlsched::load::LoadOptions options;
  if (absl::Status ids = ResolveIds(options); !ids.ok()) return Fail(ids);
  absl::StatusOr<nvlsched::load::Workload> workload =
      nvlsched::load::ParseWorkload(absl::GetFlag(FLAGS_workload));
  if (!workload.ok()) return Fail(workload.status());
  options.workload = *workload;
  options.target = absl::GetFlag(FLAGS_target);
  options.token = absl::GetFlag(FLAGS_token);
  if (options.token.empty()) {
    if (const char* env = std::getenv("NVLSCHED_TOKEN")) options.token = env;
  }
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.max_calls = absl::GetFlag(FLAGS_max_calls);
  options.call_timeout = absl::GetFlag(FLAGS_call_timeout);
  options.hold = absl::GetFlag(FLAGS_hold);
  options.min_count = absl::GetFlag(FLAGS_min_count);
  options.max_count = absl::GetFlag(FLAGS_max_count);
  options.min_gpus = absl::GetFlag(FLAGS_min_gpus);
  options.max_gpus = absl::GetFlag(FLAGS_max_gpus);
  options.single_fraction = absl::GetFlag(FLAGS_single_fraction);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.cleanup = absl::GetFlag(FLAGS_cleanup);
  options.watchers = absl::GetFlag(FLAGS_watchers);
  options.watch_org = absl::GetFlag(FLAGS_watch_org);
  options.rate = absl::GetFlag(FLAGS_rate);
  options.readers = absl::GetFlag(FLAGS_readers);
  options.read_page_size = absl::GetFlag(FLAGS_read_page_size);

  nvlsched::load::LoadReport report;
  report.options = options;
  absl::StatusOr<nvlsched::load::LoadResult> run = nvlsched::load::RunLoad(options);
  if (!run.ok()) return Fail(run.status());
  report.runs.push_back(*std::move(run));

  if (absl::GetFlag(FLAGS_compare_noop) && options.workload != nvlsched::load::Workload::kNoop) {
    nvlsched::load::LoadOptions noop = options;
    noop.workload = nvlsched::load::Workload::kNoop;
    absl::StatusOr<nvlsched::load::LoadResult> baseline = nvlsched::load::RunLoad(noop);
    if (!baseline.ok()) return Fail(baseline.status());
    report.runs.push_back(*std::move(baseline));
    const double noop_rate = report.runs.back().CallsPerSecond();
    if (noop_rate > 0) report.ratio_to_noop = report.runs.front().CallsPerSecond() / noop_rate;
  }

  const std::string out = absl::GetFlag(FLAGS_json) ? nvlsched::load::FormatJson(report)
                                                    : nvlsched::load::FormatText(report);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}
