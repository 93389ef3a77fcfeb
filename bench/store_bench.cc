// Store benchmarks (Google Benchmark):
//   BM_CommitBatchGroup/<sync>  Commit of one typical batch group: 18 instances of one
//                                BatchCreateInstances plus its idempotency record, with
//                                synchronous=FULL (0) and NORMAL (1).
//   BM_LoadAll                   Open (no quick_check) + LoadAll of 100k machines / 500k instances.
//   BM_Open/<quick_check>        Open of the same database with quick_check off (0) and on (1).
// Databases live in $NVLSCHED_BENCH_DIR (default /tmp). The 100k/500k database is built once and
// reused by later runs (delete nvlsched_store_bench_fleet.db to rebuild it).
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "store/store.h"

namespace nvlsched::store {
namespace {

constexpr int kTraysPerDomain = 18;
constexpr int kFleetMachines = 100000;
constexpr int kFleetInstances = 500000;
constexpr int kTenants = 1000;
constexpr size_t kDetailsBytes = 512;  // a serialized instance with request fields and history

std::string BenchDir() {
  const char* dir = std::getenv("NVLSCHED_BENCH_DIR");
  return dir != nullptr ? dir : "/tmp";
}

double PeakRssMiB() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

double CurrentRssMiB() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0;
  long pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

std::string Uuidish(const char* kind, int64_t n) {
  char buffer[48];
  std::snprintf(buffer, sizeof(buffer), "%.8s-%04x-4000-8000-%012llx", kind,
                static_cast<unsigned>(n >> 48), static_cast<unsigned long long>(n));
  return buffer;
}

void Check(const absl::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
    std::abort();
  }
}

std::unique_ptr<Store> OpenOrDie(const std::string& path, SyncMode sync, bool quick_check) {
  StoreOptions options;
  options.path = path;
  options.sync = sync;
  options.quick_check_on_open = quick_check;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  Check(store.status(), "Store::Open");
  return *std::move(store);
}

// Instance types, `machines` machines in domains of 18, and `kTenants` tenants.
ChangeSet Fleet(int machines) {
  ChangeSet changes;
  changes.upsert_instance_types.push_back(
      InstanceTypeRow{Uuidish("itype", 0), "gb200-tray", "GB200", 4, 189471, 42000000, "nvlink5"});
  for (int m = 0; m < machines; ++m) {
    if (m % kTraysPerDomain == 0) {
      const int d = m / kTraysPerDomain;
      changes.upsert_domains.push_back(
          DomainRow{Uuidish("domain", d), absl::StrCat("nvl72-", d), "site-1"});
    }
    MachineRow machine;
    machine.id = Uuidish("machine", m);
    machine.domain_id = Uuidish("domain", m / kTraysPerDomain);
    machine.tray_index = m % kTraysPerDomain;
    machine.instance_type_id = Uuidish("itype", 0);
    machine.gpu_count = 4;
    machine.labels = {{"rack", absl::StrCat("r", m / kTraysPerDomain)}, {"row", "a"}};
    changes.upsert_machines.push_back(std::move(machine));
  }
  for (int t = 0; t < kTenants; ++t) {
    changes.upsert_tenants.push_back(TenantRow{Uuidish("tenant", t),
                                               absl::StrCat("org-", t),
                                               absl::StrCat("tenant ", t),
                                               {{Uuidish("itype", 0), 1000}}});
  }
  changes.put_meta.push_back(MetaRow{"fleet_seeded", "1"});
  return changes;
}

InstanceRow Instance(int64_t n, int machines) {
  InstanceRow row;
  row.id = Uuidish("instance", n);
  row.name = absl::StrCat("worker-", n);
  row.tenant_id = Uuidish("tenant", n % kTenants);
  row.instance_type_id = Uuidish("itype", 0);
  row.machine_id = Uuidish("machine", n % machines);
  row.gpu_count = 4;
  row.whole_machine = true;
  row.batch_id = Uuidish("batch", n / kTraysPerDomain);
  row.strict = true;
  row.nvlink_partition_ids = {Uuidish("partition", n % 5000)};
  row.status = "READY";
  row.created_unix_micros = 1700000000000000 + n;
  row.updated_unix_micros = row.created_unix_micros;
  row.details.assign(kDetailsBytes, static_cast<char>('a' + n % 26));
  return row;
}

// Arg 0: SQLite, synchronous=FULL; 1: SQLite, NORMAL; 2: PostgreSQL, the database that
// NVLSCHED_BENCH_PG_URI names (skipped without it; e.g. a database of tools/pg_dev.sh's server).
void BM_CommitBatchGroup(benchmark::State& state) {
  const SyncMode sync = state.range(0) == 1 ? SyncMode::kNormal : SyncMode::kFull;
  std::string path =
      absl::StrCat(BenchDir(), "/nvlsched_store_bench_commit_", state.range(0), ".db");
  if (state.range(0) == 2) {
    const char* uri = std::getenv("NVLSCHED_BENCH_PG_URI");
    if (uri == nullptr || *uri == '\0') {
      state.SkipWithError("set NVLSCHED_BENCH_PG_URI to a PostgreSQL database to run this");
      return;
    }
    path = uri;
  }
  for (const char* suffix : {"", "-wal", "-shm", ".lock"}) std::filesystem::remove(path + suffix);
  std::unique_ptr<Store> store = OpenOrDie(path, sync, /*quick_check=*/true);
  constexpr int kMachines = 1800;
  Check(store->Commit(Fleet(kMachines)), "seeding the fleet");

  int64_t next = 0;
  ChangeSet group;
  for (auto _ : state) {
    state.PauseTiming();
    group.clear();
    for (int i = 0; i < kTraysPerDomain; ++i)
      group.upsert_instances.push_back(Instance(next++, kMachines));
    group.put_idempotency.push_back(IdempotencyRow{Uuidish("tenant", 0), Uuidish("request", next),
                                                   std::string(32, 'f'), std::string(600, 'r'),
                                                   1700000000000000});
    state.ResumeTiming();
    Check(store->Commit(group), "Commit");
  }
  state.SetItemsProcessed(state.iterations() * kTraysPerDomain);
  state.SetLabel(state.range(0) == 2         ? "postgresql"
                 : sync == SyncMode::kFull ? "sync=FULL"
                                           : "sync=NORMAL");
  store.reset();
  for (const char* suffix : {"", "-wal", "-shm", ".lock"}) std::filesystem::remove(path + suffix);
}
BENCHMARK(BM_CommitBatchGroup)->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

// Builds the 100k/500k database once, in commits of 10k instances.
const std::string& FleetDatabase() {
  static const std::string path = [] {
    const std::string p = BenchDir() + "/nvlsched_store_bench_fleet.db";
    if (std::filesystem::exists(p)) return p;
    const std::string partial = p + ".building";
    for (const char* suffix : {"", "-wal", "-shm", ".lock"}) std::filesystem::remove(partial + suffix);
    std::unique_ptr<Store> store = OpenOrDie(partial, SyncMode::kNormal, false);
    Check(store->Commit(Fleet(kFleetMachines)), "building the fleet");
    ChangeSet chunk;
    for (int64_t n = 0; n < kFleetInstances; ++n) {
      chunk.upsert_instances.push_back(Instance(n, kFleetMachines));
      if (chunk.upsert_instances.size() == 10000) {
        Check(store->Commit(chunk), "building instances");
        chunk.clear();
      }
    }
    Check(store->Commit(chunk), "building instances");
    store.reset();  // checkpoints the WAL into the file
    std::filesystem::rename(partial, p);
    return p;
  }();
  return path;
}

void BM_LoadAll(benchmark::State& state) {
  const std::string& path = FleetDatabase();
  size_t machines = 0;
  size_t instances = 0;
  double rss_with_state = 0;
  for (auto _ : state) {
    std::unique_ptr<Store> store = OpenOrDie(path, SyncMode::kFull, /*quick_check=*/false);
    absl::StatusOr<LoadedState> loaded = store->LoadAll();
    Check(loaded.status(), "LoadAll");
    machines = loaded->machines.size();
    instances = loaded->instances.size();
    rss_with_state = CurrentRssMiB();
    benchmark::DoNotOptimize(loaded);
  }
  state.counters["machines"] = static_cast<double>(machines);
  state.counters["instances"] = static_cast<double>(instances);
  state.counters["rss_with_state_MiB"] = rss_with_state;
  state.counters["peak_rss_MiB"] = PeakRssMiB();
  state.counters["db_MiB"] = std::filesystem::file_size(path) / double(1 << 20);
}
BENCHMARK(BM_LoadAll)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Open(benchmark::State& state) {
  const std::string& path = FleetDatabase();
  const bool quick_check = state.range(0) != 0;
  for (auto _ : state) {
    std::unique_ptr<Store> store = OpenOrDie(path, SyncMode::kFull, quick_check);
    benchmark::DoNotOptimize(store);
  }
  state.SetLabel(quick_check ? "quick_check=on" : "quick_check=off");
}
BENCHMARK(BM_Open)->Arg(0)->Arg(1)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace nvlsched::store

BENCHMARK_MAIN();
