// CapacityServiceImpl: nvlsched.v1.CapacityService, what can be had now, in the shape of a GPU
// cloud's offers API.
//
// ListOffers gives one offer per (instance type, site): the allocator keeps its capacity
// view per instance type, and its per-domain figures (Allocator::ForEachDomainCapacity) are
// summed per site of the domains, so a type whose domains span several sites gets one offer
// per site, each with that site's figures. A type with no machines gets one offer with an
// empty site_id, UNAVAILABLE. Offers come in instance-type order, then in the order the
// sites' first domains were added; sort "price" orders them by hourly price, ascending,
// keeping that order among equal prices.
//
// Per offer:
//   free_machines        READY machines held by nothing
//   free_gpus            GPUs a GPU-granular instance could take now (partly held machines too)
//   largest_strict_batch most free machines in one domain: the largest topology-optimized
//                        batch placeable now
//   fully_free_domains   domains all of whose machines of the type are free
//   stranded_machines    free machines in domains that have exactly one free
//   stock_status         AVAILABLE when a whole domain is free, LOW when anything is free
//                        (a machine or a GPU), UNAVAILABLE otherwise
// Filters: gpu_type (GPU model, case-insensitive), site_id, gpu_count (types whose machines
// have at least that many GPUs), available (free_gpus > 0).
//
// Errors: INVALID_ARGUMENT (validation.h: gpu_type too long, site_id not a UUID, gpu_count
// out of 0..16 (kMaxGpusPerMachine), sort neither "" nor "price" — BadRequest on the field); UNAVAILABLE and
// RESOURCE_EXHAUSTED from the engine queue (shutting down, overloaded).
//
// Thread-safety: the handler runs on gRPC callback threads and queues a read on the engine.
#ifndef NVLSCHED_DAEMON_SERVICES_CAPACITY_SERVICE_H_
#define NVLSCHED_DAEMON_SERVICES_CAPACITY_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "daemon/auth/auth.h"
#include "daemon/engine/engine.h"
#include "daemon/services/unary_call.h"
#include "nvlsched/v1/capacity_service.grpc.pb.h"

namespace nvlsched::daemon {

class CapacityServiceImpl final : public v1::CapacityService::CallbackService {
 public:
  // `engine`, `access` and `replies` (optional: no reply budget) must outlive the service.
  CapacityServiceImpl(Engine* engine, const AccessControl* access,
                      ReplyBudget* replies = nullptr)
      : calls_(engine, access, replies) {}

  grpc::ServerUnaryReactor* ListOffers(grpc::CallbackServerContext* ctx,
                                       const v1::ListOffersRequest* request,
                                       v1::ListOffersResponse* response) override;

 private:
  const CallPath calls_;
};

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_CAPACITY_SERVICE_H_
