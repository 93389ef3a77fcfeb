// The baseline placement policies nvlsched-replay compares nvlsched against. Comparators
// over BaselineFleet (baseline_fleet.h), not product code.
//
//   carbide   — the reference implementation's algorithm (NVIDIA's): a strict batch goes
//               to the domain with the MOST free machines (ties at random) and is refused
//               if that domain cannot hold it (no fallback); inside it, machines in random
//               (shuffled) order. Cross-domain batches: random free machines anywhere.
//               A single of g GPUs: a random machine with >= g free GPUs.
//   first-fit — the first domain (index order) that can hold the batch, lowest trays;
//               cross-domain: the first free machines in index order; a single: the first
//               machine with enough free GPUs.
//   random    — a random domain among those that can hold the batch, random machines in
//               it; cross-domain: random free machines; a single: a random machine that fits.
//
// Randomness comes only from the seed given at construction: same seed, same trace, same
// result. Random draws use std::mt19937_64 (a fixed standard sequence) and absl::Uniform.
// Thread-safety: none; one owner.
#ifndef NVLSCHED_BENCH_REPLAY_BASELINE_POLICIES_H_
#define NVLSCHED_BENCH_REPLAY_BASELINE_POLICIES_H_

#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "bench/replay/baseline_fleet.h"
#include "bench/replay/placement_policy.h"

namespace nvlsched::replay {

// Shared machinery: holdings per job, Release, Stats. Subclasses only choose machines.
class BaselinePolicy : public PlacementPolicy {
 public:
  absl::StatusOr<bool> TryPlace(uint32_t job, const JobShape& shape) final;
  absl::Status Release(uint32_t job) final;
  FleetStats Stats() const final { return fleet_.Stats(); }

 protected:
  BaselinePolicy(const FleetSpec& spec, uint64_t seed);

  // Each fills *out with the chosen machines, or returns false (refused). Must not change
  // the fleet. `out` arrives empty.
  virtual bool ChooseStrictBatch(int32_t machines, std::vector<int32_t>* out) = 0;
  virtual bool ChooseCrossDomain(int32_t machines, std::vector<int32_t>* out) = 0;
  // A machine with >= gpus free GPUs (gpus == G: a wholly free machine), or -1.
  virtual int32_t ChooseSingle(int32_t gpus) = 0;

  // Helpers for subclasses.
  // Uniform in [0, n). REQUIRES: n >= 1.
  int32_t RandomBelow(int32_t n);
  // Moves `k` uniformly chosen elements of *pool to *out (partial Fisher-Yates; reorders
  // *pool). REQUIRES: k <= pool->size().
  void SampleInto(std::vector<int32_t>* pool, int32_t k, std::vector<int32_t>* out);
  // Free machines of `domain` in tray order, appended to *out.
  void FreeMachinesOfDomain(int32_t domain, std::vector<int32_t>* out) const;
  // Every free machine, in index order, appended to *out.
  void AllFreeMachines(std::vector<int32_t>* out) const;
  // Every machine with >= gpus free GPUs, in index order, appended to *out.
  void MachinesWithFreeGpus(int32_t gpus, std::vector<int32_t>* out) const;
  // `machines` free machines drawn uniformly from the whole fleet into *out; false when fewer
  // are free. (Carbide's and random's cross-domain choice.)
  bool SampleFreeMachines(int32_t machines, std::vector<int32_t>* out);
  // A uniformly drawn machine with >= gpus free GPUs, or -1. (Carbide's and random's single.)
  int32_t RandomMachineWithFreeGpus(int32_t gpus);

  const BaselineFleet& fleet() const { return fleet_; }
  std::vector<int32_t>& scratch() { return scratch_; }

 private:
  struct Holding {
    int32_t machine;
    int32_t gpus;
  };

  BaselineFleet fleet_;
  std::mt19937_64 rng_;
  absl::flat_hash_map<uint32_t, absl::InlinedVector<Holding, 2>> holdings_;
  std::vector<int32_t> chosen_;   // reused between calls
  std::vector<int32_t> scratch_;  // reused by subclasses
};

class CarbidePolicy final : public BaselinePolicy {
 public:
  CarbidePolicy(const FleetSpec& spec, uint64_t seed) : BaselinePolicy(spec, seed) {}
  std::string_view name() const override { return "carbide"; }

 protected:
  bool ChooseStrictBatch(int32_t machines, std::vector<int32_t>* out) override;
  bool ChooseCrossDomain(int32_t machines, std::vector<int32_t>* out) override;
  int32_t ChooseSingle(int32_t gpus) override;
};

class FirstFitPolicy final : public BaselinePolicy {
 public:
  FirstFitPolicy(const FleetSpec& spec, uint64_t seed) : BaselinePolicy(spec, seed) {}
  std::string_view name() const override { return "first-fit"; }

 protected:
  bool ChooseStrictBatch(int32_t machines, std::vector<int32_t>* out) override;
  bool ChooseCrossDomain(int32_t machines, std::vector<int32_t>* out) override;
  int32_t ChooseSingle(int32_t gpus) override;
};

class RandomPolicy final : public BaselinePolicy {
 public:
  RandomPolicy(const FleetSpec& spec, uint64_t seed) : BaselinePolicy(spec, seed) {}
  std::string_view name() const override { return "random"; }

 protected:
  bool ChooseStrictBatch(int32_t machines, std::vector<int32_t>* out) override;
  bool ChooseCrossDomain(int32_t machines, std::vector<int32_t>* out) override;
  int32_t ChooseSingle(int32_t gpus) override;
};

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_BASELINE_POLICIES_H_
