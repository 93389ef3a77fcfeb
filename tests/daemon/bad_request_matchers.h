// Test helpers for INVALID_ARGUMENT statuses that carry a google.rpc.BadRequest.
#ifndef NVLSCHED_TESTS_DAEMON_BAD_REQUEST_MATCHERS_H_
#define NVLSCHED_TESTS_DAEMON_BAD_REQUEST_MATCHERS_H_

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "daemon/api/status_mapping.h"
#include "google/rpc/error_details.pb.h"

namespace nvlsched::daemon::testing {

// The field paths of the BadRequest attached to `status`, in order ({} when none).
inline std::vector<std::string> ViolationFields(const absl::Status& status) {
  std::vector<std::string> fields;
  if (std::optional<google::rpc::BadRequest> bad =
          GetErrorDetail<google::rpc::BadRequest>(status)) {
    for (const auto& violation : bad->field_violations()) fields.push_back(violation.field());
  }
  return fields;
}

// INVALID_ARGUMENT, exactly `fields` in the BadRequest, `substring` in the message.
inline void ExpectInvalid(const absl::Status& status, const std::vector<std::string>& fields,
                          const std::string& substring) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ViolationFields(status), fields) << status;
  EXPECT_NE(std::string(status.message()).find(substring), std::string::npos)
      << "message: " << status.message() << "\nexpected to contain: " << substring;
}

}  // namespace nvlsched::daemon::testing

#endif  // NVLSCHED_TESTS_DAEMON_BAD_REQUEST_MATCHERS_H_
