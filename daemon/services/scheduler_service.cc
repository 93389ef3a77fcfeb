#include "daemon/services/scheduler_service.h"

#include "absl/time/clock.h"
#include "daemon/api/field_checks.h"
#include "daemon/api/field_violations.h"
#include "daemon/engine/queue_reads.h"

namespace nvlsched::daemon {
namespace {

constexpr int kMaxPageSize = 1000;

absl::StatusOr<QueueQuery> ToQueueQuery(const v1::ListQueueRequest& req) {
  FieldViolations v;
  if (req.page_size() < 0 || req.page_size() > kMaxPageSize) {
    v.Add("page_size", absl::StrCat("page_size must be within 0..", kMaxPageSize,
                                    " (0: 100); got ", req.page_size()));
  }
  if (!req.org().empty()) CheckOrg(v, "org", req.org());
  if (!req.tenant_id().empty() && !IsUuid(req.tenant_id())) {
    v.Add("tenant_id", "tenant_id must be a UUID (ListTenants shows them)");
  }
  QueueQuery query;
  if (!req.page_token().empty()) {
    query.after = DecodeQueueToken(req.page_token());
    if (!query.after.has_value()) {
      v.Add("page_token", "page_token is not one this server issued; start again without it");
    }
  }
  if (!v.empty()) return v.ToStatus("ListQueueRequest");
  query.org = req.org();
  query.tenant_id = req.tenant_id();
  query.page_size = req.page_size();
  return query;
}

}  // namespace

grpc::ServerUnaryReactor* SchedulerServiceImpl::ListQueue(grpc::CallbackServerContext* ctx,
                                                          const v1::ListQueueRequest* req,
                                                          v1::ListQueueResponse* resp) {
  // Every org's queue is provider business; one org's is readable like its instances.
  const Permission permission =
      req->org().empty() ? Permission::kInventoryRead : Permission::kInstanceRead;
  return calls_.Read(ctx, {"ListQueue", permission}, req->org(),
                     [req] { return ToQueueQuery(*req); },
                     [resp](const State& state, const QueueQuery& query) {
                       return daemon::ListQueue(state, query, absl::Now(), resp);
                     });
}

}  // namespace nvlsched::daemon
