// GenerateDatabase: fills an empty nvlsched database with a fleet and instance records exactly
// as the daemon writes them, for start-up measurements (bench/startup.sh) at fleet scale.
//
// Nothing here builds rows by hand. The generator runs the daemon's own engine ops on a State —
// ApplyFleet for the fleet (the shape nvlsched-fleet makes), CreateInstance and
// BatchCreateInstances on requests validated and converted as the gRPC service does,
// UpdateInstanceStatus for the lifecycle, State::RunQueue to expire queued requests — and
// commits State::ChangesSince through store::Store::Commit in large groups, like the engine's
// group commit. So every row is one the daemon would have written, and LoadState accepts the
// result (its invariant check included).
//
// What it makes, for GenDbOptions{} (about 100k machines and 500k instance records):
//   - `domains` NVLink domains of `machines_per_domain` trays × `gpus_per_machine` GPUs,
//     one instance type, `tenants` tenants (quota: the whole fleet each).
//   - every `batch_domain_every`-th domain is taken by one topology-optimized batch of
//     whole-machine instances (one per tray, one NVLink partition per batch);
//   - the other machines hold gpus_per_machine one-GPU singles each (`spot_percent` of them
//     spot), most READY after Pending → Provisioning → Configuring → Ready, some still
//     PENDING or PROVISIONING;
//   - a full fleet holds at most machines × gpus_per_machine placed instances (400k for the
//     default fleet), so the rest of `instances` are records that hold no machine, as a busy
//     fleet accumulates them: spot singles whose queue_timeout passed while they waited
//     (TERMINATED, kept until deleted) and, last, `queued` spot singles still waiting (QUEUED).
// Deterministic: the same options give the same database, row for row (ids come from a
// generator seeded with `seed`; the clock is simulated from `start_time`).
//
// Thread-safety: GenerateDatabase uses only its arguments; one call per Store at a time.
#ifndef NVLSCHED_BENCH_STARTUP_GENDB_H_
#define NVLSCHED_BENCH_STARTUP_GENDB_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/store.h"

namespace nvlsched::bench {

struct GenDbOptions {
  int domains = 5556;  // 5556 × 18 = 100,008 machines
  int machines_per_domain = 18;
  int gpus_per_machine = 4;
  // Instance records in all: placed first (up to a full fleet), then expired, then queued.
  int64_t instances = 500000;
  int tenants = 8;
  // Every n-th domain holds one strict batch of whole machines; 0: no batches.
  int batch_domain_every = 20;
  // Spot singles left waiting in the queue at the end (only when the fleet is full, as
  // otherwise they would have been placed).
  int64_t queued = 2000;
  int spot_percent = 10;
  uint64_t seed = 1;
  // The simulated clock's start (records' created/updated times). The run spans about
  // (instances - placed) / 50 minutes of simulated time for the expiring waves plus 3 ms per
  // op; queued requests wait until a week after its end, so a database meant to be started
  // with its queue still waiting starts the clock a day or so before the real time.
  absl::Time start_time = absl::FromUnixSeconds(1735689600);  // 2025-01-01T00:00:00Z
  // Instance records per Store::Commit (one transaction each).
  int64_t records_per_commit = 25000;
};

struct GenDbReport {
  int64_t domains = 0;
  int64_t machines = 0;
  int64_t tenants = 0;
  int64_t placed = 0;      // instances holding GPUs
  int64_t terminated = 0;  // expired in the queue, holding nothing
  int64_t queued = 0;      // still waiting
  int64_t instances = 0;   // all records
  int64_t commits = 0;
};

// REQUIRES: `store` holds no fleet and no instances.
// Errors: INVALID_ARGUMENT for options out of range (the message names the option); any error
// of an engine op (with what it was doing) or of Store::Commit.
absl::StatusOr<GenDbReport> GenerateDatabase(store::Store& store, const GenDbOptions& options);

}  // namespace nvlsched::bench

#endif  // NVLSCHED_BENCH_STARTUP_GENDB_H_
