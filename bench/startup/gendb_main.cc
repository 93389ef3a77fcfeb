// nvlsched-gendb: writes a new nvlsched database of fleet scale, record for record as the
// daemon writes it (bench/startup/gendb.h), for measuring start-up.
//
//   nvlsched-gendb --db=/tmp/startup/nvlsched.db          # 100,008 machines, 500k instances
//   nvlsched-gendb --db=small.db --domains=2 --instances=300 --queued=10
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/startup/gendb.h"
#include "store/store.h"

namespace {
const nvlsched::bench::GenDbOptions kDefaults;
}  // namespace

ABSL_FLAG(std::string, db, "", "database file to create (must not exist)");
ABSL_FLAG(int, domains, kDefaults.domains, "NVLink domains");
ABSL_FLAG(int, machines_per_domain, kDefaults.machines_per_domain, "machines (trays) per domain");
ABSL_FLAG(int, gpus_per_machine, kDefaults.gpus_per_machine, "GPUs per machine");
ABSL_FLAG(int64_t, instances, kDefaults.instances,
          "instance records in all: placed up to a full fleet, the rest expired or queued");
ABSL_FLAG(int, tenants, kDefaults.tenants, "tenants (orgs gendb-org-0 ...)");
ABSL_FLAG(int, batch_domain_every, kDefaults.batch_domain_every,
          "every n-th domain holds one strict batch of whole machines (0: none)");
ABSL_FLAG(int64_t, queued, kDefaults.queued, "spot singles left waiting in the queue");
ABSL_FLAG(int, spot_percent, kDefaults.spot_percent, "percent of placed singles that are spot");
ABSL_FLAG(uint64_t, seed, kDefaults.seed, "random seed (ids, names, tenants, statuses)");
ABSL_FLAG(int64_t, start_unix_seconds, absl::ToUnixSeconds(kDefaults.start_time),
          "the simulated clock's start; pass about a day before now to start the daemon with "
          "the queued requests still waiting (bench/startup.sh does)");
ABSL_FLAG(int64_t, records_per_commit, kDefaults.records_per_commit,
          "instance records per Store::Commit");
ABSL_FLAG(bool, sync_full, false,
          "commit with synchronous=FULL like the daemon's default (slower; the file is the same)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "nvlsched-gendb: write a fleet-scale nvlsched database for start-up measurements.\n"
      "Usage: nvlsched-gendb --db=FILE [--domains=N --instances=N ...]");
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_db);
  if (path.empty()) {
    std::fprintf(stderr, "nvlsched-gendb: --db=FILE is required\n");
    return 2;
  }
  if (std::filesystem::exists(path)) {
    std::fprintf(stderr, "nvlsched-gendb: %s exists; the generator only writes new databases\n",
                 path.c_str());
    return 2;
  }
  nvlsched::bench::GenDbOptions options;
  options.domains = absl::GetFlag(FLAGS_domains);
  options.machines_per_domain = absl::GetFlag(FLAGS_machines_per_domain);
  options.gpus_per_machine = absl::GetFlag(FLAGS_gpus_per_machine);
  options.instances = absl::GetFlag(FLAGS_instances);
  options.tenants = absl::GetFlag(FLAGS_tenants);
  options.batch_domain_every = absl::GetFlag(FLAGS_batch_domain_every);
  options.queued = absl::GetFlag(FLAGS_queued);
  options.spot_percent = absl::GetFlag(FLAGS_spot_percent);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.records_per_commit = absl::GetFlag(FLAGS_records_per_commit);
  options.start_time = absl::FromUnixSeconds(absl::GetFlag(FLAGS_start_unix_seconds));

  const absl::Time start = absl::Now();
  nvlsched::store::StoreOptions store_options;
  store_options.path = path;
  store_options.sync = absl::GetFlag(FLAGS_sync_full) ? nvlsched::store::SyncMode::kFull
                                                      : nvlsched::store::SyncMode::kNormal;
  absl::StatusOr<std::unique_ptr<nvlsched::store::Store>> store =
      nvlsched::store::Store::Open(store_options);
  if (!store.ok()) {
    std::fprintf(stderr, "nvlsched-gendb: %s\n", std::string(store.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<nvlsched::bench::GenDbReport> report =
      nvlsched::bench::GenerateDatabase(**store, options);
  if (!report.ok()) {
    std::fprintf(stderr, "%s\n", std::string(report.status().message()).c_str());
    return 1;
  }
  store->reset();  // closes the database: the WAL is checkpointed into the file
  std::printf(
      "nvlsched-gendb: wrote %s in %.1fs: %lld domains, %lld machines, %lld tenants, "
      "%lld instances (%lld placed, %lld terminated, %lld queued) in %lld commits\n",
      path.c_str(), absl::ToDoubleSeconds(absl::Now() - start),
      static_cast<long long>(report->domains), static_cast<long long>(report->machines),
      static_cast<long long>(report->tenants), static_cast<long long>(report->instances),
      static_cast<long long>(report->placed), static_cast<long long>(report->terminated),
      static_cast<long long>(report->queued), static_cast<long long>(report->commits));
  return 0;
}
