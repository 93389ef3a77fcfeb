#include "daemon/services/capacity_service.h"

#include "daemon/engine/capacity_reads.h"
#include "daemon/services/unary_call.h"
#include "daemon/api/validation.h"

namespace nvlsched::daemon {

grpc::ServerUnaryReactor* CapacityServiceImpl::ListOffers(grpc::CallbackServerContext* ctx,
                                                          const v1::ListOffersRequest* request,
                                                          v1::ListOffersResponse* response) {
  return calls_.Read(ctx, {"ListOffers", Permission::kCatalogRead}, "",
                     Validated(request, &ValidateListOffersRequest),
                     [response](const State& state, const v1::ListOffersRequest* r) {
                       return daemon::ListOffers(state, *r, response);
                     });
}

}  // namespace nvlsched::daemon
