#include "daemon/engine/capacity_reads.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "daemon/api/convert.h"

namespace nvlsched::daemon {
namespace {

// One site's share of one instance type.
struct SiteCapacity {
  std::string site_id;
  int64_t free_machines = 0;
  int64_t available_machines = 0;  // free less spare trays
  int64_t free_gpus = 0;
  int32_t largest_strict_batch = 0;
  int32_t fully_free_domains = 0;
  int64_t stranded_machines = 0;
  int64_t spot_machines = 0;  // held by spot instances an on-demand request could preempt
  int64_t cleaning_machines = 0;
};

// The type's capacity per site, sites in the order their first domain was added.
std::vector<SiteCapacity> CapacityBySite(const State& state, const allocator::InstanceType& type) {
  const allocator::Allocator& alloc = state.allocator();
  const allocator::TypeIndex type_index = alloc.TypeIndexOf(type.id);
  const bool any_reserved = !state.queue().reservations().empty();
  std::vector<SiteCapacity> sites;
  // The type is one the allocator iterates, so this cannot fail.
  alloc.ForEachDomainCapacity(type.id, [&](allocator::DomainCapacity domain) {
        // Spare trays are free but no new request gets them, nor their GPUs.
        domain.free_gpus = std::max<int64_t>(
            domain.free_gpus - int64_t{domain.spare_machines} * type.gpus_per_machine, 0);
        // Free machines of a domain reserved for a waiting batch are held for it.
        if (any_reserved &&
            state.queue().Reserves(type_index, alloc.DomainIndexOf(domain.domain_id))) {
          // Its free machines (but the spare trays) are held; GPUs free on machines already
          // partly held there are still open to GPU-granular instances (allocator/gang_queue.h).
          domain.free_gpus = std::max<int64_t>(
              domain.free_gpus - int64_t{domain.available_machines} * type.gpus_per_machine, 0);
          domain.free_machines = domain.spare_machines;
          domain.available_machines = 0;
        }
        const int spot =
            alloc.DomainReclaimableMachines(type_index, alloc.DomainIndexOf(domain.domain_id));
        const allocator::Domain* spec = alloc.FindDomain(domain.domain_id);
        const std::string& site_id = spec != nullptr ? spec->site_id : std::string();
        auto site = std::find_if(sites.begin(), sites.end(),
                                 [&](const SiteCapacity& s) { return s.site_id == site_id; });
        if (site == sites.end()) {
          sites.push_back(SiteCapacity{site_id});
          site = sites.end() - 1;
        }
        site->free_machines += domain.free_machines;
        site->available_machines += domain.available_machines;
        site->free_gpus += domain.free_gpus;
        site->spot_machines += spot;
        site->cleaning_machines += domain.cleaning_machines;
        if (spec == nullptr || spec->state != allocator::DomainState::kDegraded) {
          // A DEGRADED domain takes no strict batch.
          site->largest_strict_batch =
              std::max(site->largest_strict_batch, domain.available_machines);
        }
        if (domain.total_machines > 0 && domain.free_machines == domain.total_machines) {
          ++site->fully_free_domains;
        }
        if (domain.available_machines == 1) ++site->stranded_machines;
      }).IgnoreError();
  if (sites.empty()) sites.push_back(SiteCapacity{});  // no machines: one UNAVAILABLE offer
  return sites;
}

v1::StockStatus StockOf(const SiteCapacity& site) {
  if (site.fully_free_domains > 0) return v1::STOCK_STATUS_AVAILABLE;
  if (site.free_gpus > 0 || site.available_machines > 0) return v1::STOCK_STATUS_LOW;
  return v1::STOCK_STATUS_UNAVAILABLE;
}

v1::Offer MakeOffer(const allocator::InstanceType& type, const SiteCapacity& site) {
  v1::Offer offer;
  offer.set_instance_type_id(type.id);
  offer.set_instance_type_name(type.name);
  offer.set_gpu_name(type.gpu_model);
  offer.set_gpu_count(type.gpus_per_machine);
  offer.set_gpu_memory_mib(type.gpu_memory_mib);
  offer.set_nvlink(true);
  offer.set_interconnect(type.interconnect);
  offer.set_site_id(site.site_id);
  offer.set_hourly_price(PriceFromMicros(type.price_per_hour_micros));
  offer.set_stock_status(StockOf(site));
  offer.set_free_machines(static_cast<int32_t>(site.free_machines));
  offer.set_free_gpus(static_cast<int32_t>(site.free_gpus));
  offer.set_largest_strict_batch(site.largest_strict_batch);
  offer.set_fully_free_domains(site.fully_free_domains);
  offer.set_stranded_machines(static_cast<int32_t>(site.stranded_machines));
  offer.set_cleaning_machines(static_cast<int32_t>(site.cleaning_machines));
  offer.set_spot_hourly_price(PriceFromMicros(type.spot_price_per_hour_micros));
  offer.set_spot_machines(static_cast<int32_t>(site.spot_machines));
  offer.set_on_demand_available_machines(
      static_cast<int32_t>(site.available_machines + site.spot_machines));
  offer.set_available_machines(static_cast<int32_t>(site.available_machines));
  offer.set_spare_machines(static_cast<int32_t>(site.free_machines - site.available_machines));
  return offer;
}

}  // namespace

absl::Status ListOffers(const State& state, const v1::ListOffersRequest& req,
                        v1::ListOffersResponse* resp) {
  const allocator::Allocator& alloc = state.allocator();
  alloc.ForEachInstanceType([&](const allocator::InstanceType& type) {
    if (!req.gpu_type().empty() && !absl::EqualsIgnoreCase(type.gpu_model, req.gpu_type())) return;
    if (req.gpu_count() > 0 && type.gpus_per_machine < req.gpu_count()) return;
    for (const SiteCapacity& site : CapacityBySite(state, type)) {
      if (!req.site_id().empty() && site.site_id != req.site_id()) continue;
      if (req.available() && site.free_gpus <= 0) continue;
      *resp->add_offers() = MakeOffer(type, site);
    }
  });
  if (req.sort() == "price") {
    std::stable_sort(resp->mutable_offers()->begin(), resp->mutable_offers()->end(),
                     [](const v1::Offer& a, const v1::Offer& b) {
                       return a.hourly_price() < b.hourly_price();
                     });
  }
  return absl::OkStatus();
}

}  // namespace nvlsched::daemon
