// Tests allocator/errors.h: payloads round-trip and are told apart.
#include "allocator/errors.h"

#include "absl/strings/cord.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(ErrorsTest, CapacityShortfallRoundTrips) {
  CapacityShortfall in{"type-1", CapacityUnit::kGpus, 3, 2, 40};
  absl::Status status = CapacityExhaustedError("not enough free capacity now: x", in);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(), "not enough free capacity now: x");
  EXPECT_EQ(GetCapacityShortfall(status), in);
  EXPECT_FALSE(GetQuotaViolation(status).has_value());
}

TEST(ErrorsTest, QuotaViolationRoundTripsWithAwkwardIds) {
  QuotaViolation in{"tenant=with;odd\nchars", "type", 2, 8, 4, 8};
  absl::Status status = QuotaExceededError("quota exceeded", in);
  EXPECT_EQ(GetQuotaViolation(status), in);
  EXPECT_FALSE(GetCapacityShortfall(status).has_value());
}

TEST(ErrorsTest, OtherStatusesCarryNoDetails) {
  EXPECT_FALSE(GetCapacityShortfall(absl::OkStatus()).has_value());
  EXPECT_FALSE(GetCapacityShortfall(absl::ResourceExhaustedError("plain")).has_value());
  absl::Status wrong_code = absl::InvalidArgumentError("x");
  wrong_code.SetPayload(std::string(kCapacityPayloadUrl), absl::Cord("requested=1\n"));
  EXPECT_FALSE(GetCapacityShortfall(wrong_code).has_value());
  absl::Status malformed = absl::ResourceExhaustedError("x");
  malformed.SetPayload(std::string(kCapacityPayloadUrl), absl::Cord("requested=many\n"));
  EXPECT_FALSE(GetCapacityShortfall(malformed).has_value());
}

TEST(ErrorsTest, UnitNames) {
  EXPECT_EQ(CapacityUnitName(CapacityUnit::kMachines), "machines");
  EXPECT_EQ(CapacityUnitName(CapacityUnit::kGpus), "gpus");
}

}  // namespace
}  // namespace nvlsched::allocator
