#include "allocator/capacity_view.h"

#include "allocator/fleet_state.h"

namespace nvlsched::allocator {

CapacityView ComputeCapacityView(const FleetState& state, TypeIndex t) {
  const TypeState& ts = state.type_states[t];
  CapacityView view;
  view.instance_type_id = state.types[t].spec.id;
  view.total_machines = ts.total_machines;
  view.free_machines = ts.free_machines;
  view.available_machines = ts.placeable_machines;
  view.spare_machines = ts.free_machines - ts.placeable_machines;
  view.free_gpus = ts.free_gpus;
  view.largest_strict_batch = ts.best_fit.LargestFree();
  view.largest_domain = ts.LargestCapacity();
  view.fully_free_domains = ts.fully_free_domains;
  // Bucket 1 holds exactly the domains with one free machine: each is one stranded machine.
  view.stranded_machines = ts.best_fit.Bucket(1).size();
  return view;
}

DomainCapacity ComputeDomainCapacity(const FleetState& state, TypeIndex t, DomainIndex d) {
  const DomainCell& cell = state.cell(t, d);
  DomainCapacity out;
  out.domain_id = state.domains[d].spec.id;
  out.instance_type_id = state.types[t].spec.id;
  out.total_machines = cell.total;
  out.free_machines = cell.free;
  out.available_machines = cell.Placeable();
  out.spare_machines = cell.SpareFree();
  out.cleaning_machines = cell.cleaning;
  for (int f = 1; f <= kMaxGpusPerMachine; ++f) out.free_gpus += int64_t{f} * cell.granular_hist[f];
  return out;
}

}  // namespace nvlsched::allocator
