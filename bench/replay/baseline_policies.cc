#include "bench/replay/baseline_policies.h"

#include <utility>

#include "absl/random/distributions.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace nvlsched::replay {

// ------------------------------------------------------------------ BaselinePolicy

BaselinePolicy::BaselinePolicy(const FleetSpec& spec, uint64_t seed)
    : fleet_(spec), rng_(seed) {
  chosen_.reserve(static_cast<size_t>(spec.machines()));
  scratch_.reserve(static_cast<size_t>(spec.machines()));
}

absl::StatusOr<bool> BaselinePolicy::TryPlace(uint32_t job, const JobShape& shape) {
  const int32_t g = fleet_.spec().gpus_per_machine;
  chosen_.clear();
  int32_t gpus_each = g;
  switch (shape.kind) {
    case JobKind::kGpuSingle:
    case JobKind::kWholeSingle: {
      gpus_each = shape.kind == JobKind::kGpuSingle ? shape.gpus : g;
      int32_t machine = ChooseSingle(gpus_each);
      if (machine < 0) return false;
      chosen_.push_back(machine);
      break;
    }
    case JobKind::kStrictBatch:
      if (!ChooseStrictBatch(shape.machines, &chosen_)) return false;
      break;
    case JobKind::kCrossDomainBatch:
      if (!ChooseCrossDomain(shape.machines, &chosen_)) return false;
      break;
    case JobKind::kInfeasible:
      return absl::InvalidArgumentError("an infeasible job must not be offered to a policy");
  }
  auto [it, inserted] = holdings_.try_emplace(job);
  if (!inserted) {
    return absl::InternalError(absl::StrCat(AbslView(name()), ": job ", job, " is already placed"));
  }
  for (int32_t machine : chosen_) {
    fleet_.Take(machine, gpus_each);
    it->second.push_back(Holding{machine, gpus_each});
  }
  return true;
}

absl::Status BaselinePolicy::Release(uint32_t job) {
  auto it = holdings_.find(job);
  if (it == holdings_.end()) {
    return absl::InternalError(absl::StrCat(AbslView(name()), ": job ", job, " holds nothing to release"));
  }
  for (const Holding& h : it->second) fleet_.Give(h.machine, h.gpus);
  holdings_.erase(it);
  return absl::OkStatus();
}

int32_t BaselinePolicy::RandomBelow(int32_t n) { return absl::Uniform<int32_t>(rng_, 0, n); }

void BaselinePolicy::SampleInto(std::vector<int32_t>* pool, int32_t k,
                                std::vector<int32_t>* out) {
  const int32_t n = static_cast<int32_t>(pool->size());
  for (int32_t i = 0; i < k; ++i) {
    int32_t j = i + RandomBelow(n - i);
    std::swap((*pool)[i], (*pool)[j]);
    out->push_back((*pool)[i]);
  }
}

void BaselinePolicy::FreeMachinesOfDomain(int32_t domain, std::vector<int32_t>* out) const {
  const int32_t m = fleet_.spec().machines_per_domain;
  for (int32_t machine = domain * m; machine < (domain + 1) * m; ++machine) {
    if (fleet_.machine_free(machine)) out->push_back(machine);
  }
}

void BaselinePolicy::AllFreeMachines(std::vector<int32_t>* out) const {
  for (int32_t machine = 0; machine < fleet_.machine_count(); ++machine) {
    if (fleet_.machine_free(machine)) out->push_back(machine);
  }
}

void BaselinePolicy::MachinesWithFreeGpus(int32_t gpus, std::vector<int32_t>* out) const {
  for (int32_t machine = 0; machine < fleet_.machine_count(); ++machine) {
    if (fleet_.free_gpus(machine) >= gpus) out->push_back(machine);
  }
}

bool BaselinePolicy::SampleFreeMachines(int32_t machines, std::vector<int32_t>* out) {
  if (fleet().free_machines() < machines) return false;
  std::vector<int32_t>& pool = scratch();
  pool.clear();
  AllFreeMachines(&pool);
  SampleInto(&pool, machines, out);
  return true;
}

int32_t BaselinePolicy::RandomMachineWithFreeGpus(int32_t gpus) {
  std::vector<int32_t>& pool = scratch();
  pool.clear();
  MachinesWithFreeGpus(gpus, &pool);
  if (pool.empty()) return -1;
  return pool[RandomBelow(static_cast<int32_t>(pool.size()))];
}

// ------------------------------------------------------------------ carbide

bool CarbidePolicy::ChooseStrictBatch(int32_t machines, std::vector<int32_t>* out) {
  // The domain with the most free machines, ties uniformly at random (reservoir of size 1).
  int32_t best = -1;
  int32_t best_free = -1;
  int32_t ties = 0;
  for (int32_t d = 0; d < fleet().spec().domains; ++d) {
    int32_t free = fleet().domain_free_machines(d);
    if (free > best_free) {
      best = d;
      best_free = free;
      ties = 1;
    } else if (free == best_free && RandomBelow(++ties) == 0) {
      best = d;
    }
  }
  if (best_free < machines) return false;  // no fallback to another domain
  std::vector<int32_t>& pool = scratch();
  pool.clear();
  FreeMachinesOfDomain(best, &pool);
  SampleInto(&pool, machines, out);
  return true;
}

bool CarbidePolicy::ChooseCrossDomain(int32_t machines, std::vector<int32_t>* out) {
  return SampleFreeMachines(machines, out);
}

int32_t CarbidePolicy::ChooseSingle(int32_t gpus) { return RandomMachineWithFreeGpus(gpus); }

// ------------------------------------------------------------------ first-fit

bool FirstFitPolicy::ChooseStrictBatch(int32_t machines, std::vector<int32_t>* out) {
  for (int32_t d = 0; d < fleet().spec().domains; ++d) {
    if (fleet().domain_free_machines(d) < machines) continue;
    FreeMachinesOfDomain(d, out);
    out->resize(machines);  // lowest trays
    return true;
  }
  return false;
}

bool FirstFitPolicy::ChooseCrossDomain(int32_t machines, std::vector<int32_t>* out) {
  if (fleet().free_machines() < machines) return false;
  for (int32_t machine = 0; static_cast<int32_t>(out->size()) < machines; ++machine) {
    if (fleet().machine_free(machine)) out->push_back(machine);
  }
  return true;
}

int32_t FirstFitPolicy::ChooseSingle(int32_t gpus) {
  for (int32_t machine = 0; machine < fleet().machine_count(); ++machine) {
    if (fleet().free_gpus(machine) >= gpus) return machine;
  }
  return -1;
}

// ------------------------------------------------------------------ random

bool RandomPolicy::ChooseStrictBatch(int32_t machines, std::vector<int32_t>* out) {
  int32_t chosen = -1;
  int32_t candidates = 0;
  for (int32_t d = 0; d < fleet().spec().domains; ++d) {
    if (fleet().domain_free_machines(d) >= machines && RandomBelow(++candidates) == 0) {
      chosen = d;
    }
  }
  if (chosen < 0) return false;
  std::vector<int32_t>& pool = scratch();
  pool.clear();
  FreeMachinesOfDomain(chosen, &pool);
  SampleInto(&pool, machines, out);
  return true;
}

bool RandomPolicy::ChooseCrossDomain(int32_t machines, std::vector<int32_t>* out) {
  return SampleFreeMachines(machines, out);
}

int32_t RandomPolicy::ChooseSingle(int32_t gpus) { return RandomMachineWithFreeGpus(gpus); }

}  // namespace nvlsched::replay
