#include "tests/fuzz/request_checks.h"

#include <cmath>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/api/convert.h"
#include "daemon/engine/rows.h"
#include "daemon/api/field_violations.h"
#include "daemon/api/status_mapping.h"
#include "daemon/api/validation.h"
#include "google/rpc/error_details.pb.h"
#include "nvlsched/v1/capacity_service.pb.h"
#include "nvlsched/v1/instance_service.pb.h"
#include "nvlsched/v1/inventory_service.pb.h"
#include "tests/fuzz/fuzz_check.h"

namespace nvlsched::fuzz {
namespace {

namespace v1 = nvlsched::v1;
using daemon::PriceFromMicros;
using daemon::PriceToMicros;
using daemon::ToCore;
using daemon::ToProto;
using daemon::ToRow;

// OK, or INVALID_ARGUMENT "invalid <Message>: ..." carrying a BadRequest with one violation per
// field, each with a path and a sentence; the gRPC mapping keeps code, message and details.
void CheckValidationStatus(const absl::Status& status, const std::string& what) {
  if (status.ok()) return;
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument,
             absl::StrCat(what, ": validation returned ", status.ToString()));
  FUZZ_CHECK(absl::StartsWith(status.message(), "invalid "), status.ToString());
  const auto payload = status.GetPayload(daemon::kBadRequestTypeUrl);
  FUZZ_CHECK(payload.has_value(), absl::StrCat(what, ": no BadRequest payload: ", status.ToString()));
  google::rpc::BadRequest bad_request;
  FUZZ_CHECK(bad_request.ParseFromString(std::string(*payload)), "BadRequest payload does not parse");
  FUZZ_CHECK(bad_request.field_violations_size() > 0, status.ToString());
  std::set<std::string> fields;
  for (const auto& violation : bad_request.field_violations()) {
    FUZZ_CHECK(!violation.field().empty(), status.ToString());
    FUZZ_CHECK(!violation.description().empty(), status.ToString());
    FUZZ_CHECK(fields.insert(violation.field()).second,
               absl::StrCat("field ", violation.field(), " reported twice: ", status.ToString()));
  }

  grpc::Status mapped = daemon::ToGrpcStatus(status);
  FUZZ_CHECK(mapped.error_code() == grpc::StatusCode::INVALID_ARGUMENT, status.ToString());
  FUZZ_CHECK(mapped.error_message() == status.message(), status.ToString());
  absl::Status back = daemon::FromGrpcStatus(mapped);
  std::optional<google::rpc::BadRequest> details =
      daemon::GetErrorDetail<google::rpc::BadRequest>(back);
  FUZZ_CHECK(details.has_value() &&
                 details->SerializeAsString() == bad_request.SerializeAsString(),
             absl::StrCat(what, ": BadRequest lost in the gRPC mapping: ", status.ToString()));
}

// A price that validated (finite, >= 0) converts to non-negative micro-dollars, and back to
// the same micro-dollars.
void CheckPrice(double usd_per_hour, const std::string& what) {
  const int64_t micros = PriceToMicros(usd_per_hour);
  FUZZ_CHECK(micros >= 0, absl::StrCat(what, ": price ", usd_per_hour, " USD/h became ", micros,
                                       " micro-USD"));
  FUZZ_CHECK(PriceToMicros(PriceFromMicros(micros)) == micros,
             absl::StrCat(what, ": ", micros, " micro-USD do not round-trip"));
}

// Each record of a fleet: proto -> core -> row -> core -> row is stable, and so is
// core -> proto -> core.
void ConvertFleet(const v1::Fleet& fleet) {
  for (const v1::InstanceType& p : fleet.instance_types()) {
    CheckPrice(p.price_per_hour(), "instance type");
    const allocator::InstanceType core = ToCore(p);
    const store::InstanceTypeRow row = ToRow(core);
    FUZZ_CHECK(core.gpus_per_machine == p.gpus_per_machine() && core.id == p.id(), p.DebugString());
    FUZZ_CHECK(ToRow(ToCore(row)) == row, p.DebugString());
    FUZZ_CHECK(ToRow(ToCore(ToProto(core))) == row, p.DebugString());
  }
  for (const v1::Domain& p : fleet.domains()) {
    const store::DomainRow row = ToRow(ToCore(p));
    FUZZ_CHECK(row.id == p.id() && row.site_id == p.site_id(), p.DebugString());
    FUZZ_CHECK(ToRow(ToCore(row)) == row, p.DebugString());
    FUZZ_CHECK(ToRow(ToCore(ToProto(ToCore(p)))) == row, p.DebugString());
  }
  for (const v1::Machine& p : fleet.machines()) {
    const allocator::Machine core = ToCore(p);
    const store::MachineRow row = ToRow(core);
    FUZZ_CHECK(row.state >= store::kMachineReady && row.state <= store::kMachineError,
               p.DebugString());
    FUZZ_CHECK(core.tray_index == p.tray_index() && core.gpu_count == p.gpu_count(), p.DebugString());
    FUZZ_CHECK(ToRow(ToCore(row)) == row, p.DebugString());
    FUZZ_CHECK(ToRow(ToCore(ToProto(core))) == row, p.DebugString());
  }
  for (const v1::Tenant& p : fleet.tenants()) {
    const allocator::Tenant core = ToCore(p);
    const store::TenantRow row = ToRow(core);
    FUZZ_CHECK(row.id == p.id() && row.org == p.org(), p.DebugString());
    FUZZ_CHECK(ToRow(ToCore(row)) == row, p.DebugString());
    FUZZ_CHECK(ToRow(ToCore(ToProto(core))) == row, p.DebugString());
  }
}

// The partitions a create request names, each once, in first-named order.
template <typename NvLinks>
void ConvertPartitions(const NvLinks& nvlinks) {
  const std::vector<std::string> partitions = daemon::DistinctPartitions(nvlinks);
  std::set<std::string> seen(partitions.begin(), partitions.end());
  FUZZ_CHECK(seen.size() == partitions.size(), "DistinctPartitions returned a duplicate");
  for (const auto& nv : nvlinks) {
    FUZZ_CHECK(seen.count(nv.nv_link_logical_partition_id()) == 1, "a partition went missing");
  }
  if (!partitions.empty()) {
    FUZZ_CHECK(partitions.front() == nvlinks.Get(0).nv_link_logical_partition_id(),
               "DistinctPartitions lost the first-named order");
  }
}

// A context that knows an instance type of 4 GPUs and one domain, besides the fleet's own.
daemon::ValidationContext InventoryContext() {
  daemon::ValidationContext context;
  context.known_instance_type_gpus = [](absl::string_view id) {
    return id == "41e36058-8403-4086-a9b8-39cb5bc9cb98" ? 4 : 0;
  };
  context.known_domain = [](absl::string_view id) {
    return id == "d1000000-0000-4000-8000-000000000001";
  };
  return context;
}

struct RequestKind {
  std::function<std::unique_ptr<google::protobuf::Message>()> make;
  std::function<void(const google::protobuf::Message&)> check;
};

template <typename M>
RequestKind Kind(std::function<void(const M&)> check) {
  return RequestKind{[] { return std::make_unique<M>(); },
                     [check](const google::protobuf::Message& m) {
                       check(static_cast<const M&>(m));
                     }};
}

// Validation only: a request of ids and filters that converts to nothing.
template <typename M>
RequestKind ValidateOnly(absl::Status (*validate)(const M&)) {
  return Kind<M>([validate](const M& m) {
    CheckValidationStatus(validate(m), M::descriptor()->full_name());
  });
}

const std::vector<RequestKind>& Kinds() {
  static const std::vector<RequestKind>* kinds = new std::vector<RequestKind>{
      Kind<v1::BatchCreateInstancesRequest>([](const v1::BatchCreateInstancesRequest& r) {
        for (int gpus : {0, 4}) {
          daemon::ValidationContext context;
          context.instance_type_gpus = gpus;
          const absl::Status status = daemon::ValidateBatchCreateInstancesRequest(r, context);
          CheckValidationStatus(status, "BatchCreateInstancesRequest");
          if (!status.ok()) continue;
          FUZZ_CHECK(r.count() >= 2 && r.count() <= context.max_batch_count, r.DebugString());
          const allocator::SpreadPolicy policy = ToCore(r.spread_policy());
          FUZZ_CHECK(!allocator::SpreadPolicyName(policy).empty(), r.DebugString());
          ConvertPartitions(r.nv_link_interfaces());
        }
      }),
      Kind<v1::CreateInstanceRequest>([](const v1::CreateInstanceRequest& r) {
        for (int gpus : {0, 4}) {
          daemon::ValidationContext context;
          context.instance_type_gpus = gpus;
          const absl::Status status = daemon::ValidateCreateInstanceRequest(r, context);
          CheckValidationStatus(status, "CreateInstanceRequest");
          if (!status.ok()) continue;
          if (r.has_max_price_per_hour()) CheckPrice(r.max_price_per_hour(), "max_price_per_hour");
          if (gpus > 0 && r.has_gpu_count()) {
            FUZZ_CHECK(r.gpu_count() >= 1 && r.gpu_count() <= gpus, r.DebugString());
          }
          ConvertPartitions(r.nv_link_interfaces());
        }
      }),
      ValidateOnly<v1::GetInstanceRequest>(&daemon::ValidateGetInstanceRequest),
      ValidateOnly<v1::ListInstancesRequest>(&daemon::ValidateListInstancesRequest),
      ValidateOnly<v1::UpdateInstanceStatusRequest>(&daemon::ValidateUpdateInstanceStatusRequest),
      ValidateOnly<v1::DeleteInstanceRequest>(&daemon::ValidateDeleteInstanceRequest),
      ValidateOnly<v1::BatchDeleteInstancesRequest>(&daemon::ValidateBatchDeleteInstancesRequest),
      Kind<v1::ApplyFleetRequest>([](const v1::ApplyFleetRequest& r) {
        for (const daemon::ValidationContext& context :
             {daemon::ValidationContext{}, InventoryContext()}) {
          const absl::Status status = daemon::ValidateApplyFleetRequest(r, context);
          CheckValidationStatus(status, "ApplyFleetRequest");
          if (status.ok()) ConvertFleet(r.fleet());
        }
      }),
      Kind<v1::SetMachineStateRequest>([](const v1::SetMachineStateRequest& r) {
        const absl::Status status = daemon::ValidateSetMachineStateRequest(r);
        CheckValidationStatus(status, "SetMachineStateRequest");
        if (!status.ok()) return;
        const allocator::MachineState core = ToCore(r.state());
        FUZZ_CHECK(!allocator::MachineStateName(core).empty(), r.DebugString());
        FUZZ_CHECK(ToCore(ToProto(core)) == core, r.DebugString());
        if (r.state() != v1::MACHINE_STATE_UNSPECIFIED) {
          FUZZ_CHECK(ToProto(core) == r.state(), r.DebugString());
        }
      }),
      Kind<v1::UpsertTenantRequest>([](const v1::UpsertTenantRequest& r) {
        const absl::Status status = daemon::ValidateUpsertTenantRequest(r);
        CheckValidationStatus(status, "UpsertTenantRequest");
        if (!status.ok()) return;
        v1::Fleet fleet;
        *fleet.add_tenants() = r.tenant();
        ConvertFleet(fleet);
      }),
      ValidateOnly<v1::RemoveMachineRequest>(&daemon::ValidateRemoveMachineRequest),
      ValidateOnly<v1::GetMachineRequest>(&daemon::ValidateGetMachineRequest),
      ValidateOnly<v1::ListMachinesRequest>(&daemon::ValidateListMachinesRequest),
      ValidateOnly<v1::ListDomainsRequest>(&daemon::ValidateListDomainsRequest),
      ValidateOnly<v1::ListOffersRequest>(&daemon::ValidateListOffersRequest),
      Kind<v1::Fleet>([](const v1::Fleet& fleet) {
        for (const daemon::ValidationContext& context :
             {daemon::ValidationContext{}, InventoryContext()}) {
          const absl::Status status = daemon::ValidateFleet(fleet, context);
          CheckValidationStatus(status, "Fleet");
          if (status.ok()) ConvertFleet(fleet);
        }
      }),
  };
  return *kinds;
}

}  // namespace

size_t RequestKindCount() { return Kinds().size(); }

std::unique_ptr<google::protobuf::Message> NewRequest(size_t kind) { return Kinds()[kind].make(); }

void CheckRequest(size_t kind, const google::protobuf::Message& request) {
  Kinds()[kind].check(request);
}

}  // namespace nvlsched::fuzz
