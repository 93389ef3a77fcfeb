// The requests nvlsched-load sends, built once per run from LoadOptions, and the reading of
// the daemon's RESOURCE_EXHAUSTED details.
//
// Thread-safety: pure functions.
#ifndef NVLSCHED_BENCH_LOAD_REQUESTS_H_
#define NVLSCHED_BENCH_LOAD_REQUESTS_H_

#include <grpcpp/support/status.h>

#include "bench/load/load_options.h"
#include "nvlsched/v1/instance_service.pb.h"

namespace nvlsched::load {

// Every field a valid strict BatchCreateInstancesRequest needs except count: org, tenant,
// instance type, name_prefix "nvlsched-load", a fixed VPC, one physical interface on a fixed
// subnet and a fixed operating system (ids derived with NameBasedUuid, so runs repeat).
// topology_optimized is left absent, which the API reads as true.
nvlsched::v1::BatchCreateInstancesRequest BatchCreateTemplate(const LoadOptions& options);

// org, tenant and instance type; the caller sets name (unique among live instances of the
// tenant) and gpu_count.
nvlsched::v1::CreateInstanceRequest SingleCreateTemplate(const LoadOptions& options);

enum class Refusal {
  kCapacity,  // google.rpc.ErrorInfo reason INSUFFICIENT_CAPACITY
  kQuota,     // google.rpc.QuotaFailure
  kOther,     // RESOURCE_EXHAUSTED without either (e.g. gRPC's own message-size limits)
};

// Reads the google.rpc.Status details of a RESOURCE_EXHAUSTED answer.
// Cost: parses the details; call it off the latency measurement.
Refusal ClassifyRefusal(const grpc::Status& status);

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_REQUESTS_H_
