// Field checks and the violation collector (daemon/field_checks.h, field_violations.h).
#include "daemon/api/field_checks.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/api/field_violations.h"
#include "tests/daemon/bad_request_matchers.h"

namespace nvlsched::daemon {
namespace {

using testing::ViolationFields;

TEST(FieldChecksTest, Uuids) {
  EXPECT_TRUE(IsUuid("f97df110-f4de-492e-8849-4a6af68026b0"));
  // Lower case only: ids are compared exactly downstream (issue 21).
  EXPECT_FALSE(IsUuid("F97DF110-F4DE-492E-8849-4A6AF68026B0"));
  EXPECT_FALSE(IsUuid("f97df110-f4de-492e-8849-4a6af68026B0"));
  EXPECT_TRUE(IsUuid("00000000-0000-0000-0000-000000000000"));
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("f97df110f4de492e88494a6af68026b0"));
  EXPECT_FALSE(IsUuid("f97df110-f4de-492e-8849-4a6af68026b"));
  EXPECT_FALSE(IsUuid("f97df110-f4de-492e-8849-4a6af68026b0 "));
  EXPECT_FALSE(IsUuid("f97df110_f4de-492e-8849-4a6af68026b0"));
  EXPECT_FALSE(IsUuid("g97df110-f4de-492e-8849-4a6af68026b0"));
}

TEST(FieldChecksTest, PathsAndQuotes) {
  EXPECT_EQ(Child("interfaces[1]", "ip_address"), "interfaces[1].ip_address");
  EXPECT_EQ(Child("", "count"), "count");
  EXPECT_EQ(Index("nv_link_interfaces", 2), "nv_link_interfaces[2]");
  EXPECT_EQ(MapKey("labels", "k"), "labels[\"k\"]");
  EXPECT_EQ(MapKey("labels", "a\"b"), "labels[\"a\\\"b\"]");
  // A long key is cut at 64 bytes: the path goes back in the status's trailers.
  EXPECT_EQ(MapKey("labels", std::string(100, 'k')),
            absl::StrCat("labels[\"", std::string(64, 'k'), "...\"]"));
  EXPECT_EQ(CharacterCount("h\xc3\xa9llo"), 5);
  EXPECT_EQ(Quote(std::string(70, 'x')), "\"" + std::string(64, 'x') + "...\" (70 bytes)");
}

TEST(FieldChecksTest, OkStatusCarriesNoPayload) {
  FieldViolations violations;
  EXPECT_TRUE(violations.ToStatus("X").ok());
  violations.Add("a", "a is bad");
  violations.Add("a", "a is also odd");
  violations.Add("b", "b is bad");
  const absl::Status status = violations.ToStatus("X");
  EXPECT_EQ(status.message(), "invalid X: a is bad; a is also odd; b is bad");
  EXPECT_EQ(ViolationFields(status), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(status.GetPayload(kBadRequestTypeUrl).has_value());
}

}  // namespace
}  // namespace nvlsched::daemon
