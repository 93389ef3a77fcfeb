// InstanceService requests to the engine's core requests (daemon/engine/requests.h): validate
// (daemon/api/validation.h), then convert, on the gRPC thread. Each returns the core request
// or the INVALID_ARGUMENT the call finishes with.
//
// Thread-safety: pure functions.
#ifndef NVLSCHED_DAEMON_SERVICES_INSTANCE_REQUESTS_H_
#define NVLSCHED_DAEMON_SERVICES_INSTANCE_REQUESTS_H_

#include "absl/status/statusor.h"
#include "daemon/api/validation.h"
#include "daemon/engine/requests.h"
#include "nvlsched/v1/instance_service.pb.h"

namespace nvlsched::daemon {

absl::StatusOr<CreateRequest> ToCreateRequest(const v1::BatchCreateInstancesRequest& req,
                                              const ValidationContext& context);
absl::StatusOr<CreateRequest> ToCreateRequest(const v1::CreateInstanceRequest& req);
absl::StatusOr<StatusUpdate> ToStatusUpdate(const v1::UpdateInstanceStatusRequest& req);
absl::StatusOr<ReplaceRequest> ToReplaceRequest(const v1::ReplaceInstanceRequest& req);
absl::StatusOr<DeleteRequest> ToDeleteRequest(const v1::DeleteInstanceRequest& req);
absl::StatusOr<DeleteRequest> ToDeleteRequest(const v1::BatchDeleteInstancesRequest& req);
absl::StatusOr<InstanceRef> ToInstanceRef(const v1::GetInstanceRequest& req);
// Also INVALID_ARGUMENT (BadRequest at page_token) for a token this server did not issue.
absl::StatusOr<InstanceQuery> ToInstanceQuery(const v1::ListInstancesRequest& req);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_SERVICES_INSTANCE_REQUESTS_H_
