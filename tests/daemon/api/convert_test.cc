// Tests daemon/api/convert.h: money conversions, tenants.
#include "daemon/api/convert.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;

TEST(PriceToMicrosTest, RoundsToTheNearestMicroDollar) {
  EXPECT_EQ(PriceToMicros(42.0), 42000000);
  EXPECT_EQ(PriceToMicros(0.0000004), 0);
  EXPECT_EQ(PriceToMicros(0.0000006), 1);
  EXPECT_EQ(PriceToMicros(PriceFromMicros(123456789)), 123456789);
}

// Regression (found by the request fuzzers on branch fuzz): a price beyond int64
// micro-dollars came back as INT64_MIN, so CreateInstance refused max_price_per_hour=1e300 as
// below a $42 type's price.
TEST(PriceToMicrosTest, SaturatesBeyondInt64) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(PriceToMicros(1e300), kMax);
  EXPECT_EQ(PriceToMicros(9.3e12), kMax);
  EXPECT_EQ(PriceToMicros(-1e300), std::numeric_limits<int64_t>::min());
  EXPECT_GT(PriceToMicros(9.1e12), PriceToMicros(42.0));
}

TEST(TenantConversionTest, PriorityRoundTrips) {
  v1::Tenant proto;
  proto.set_id("t");
  proto.set_org("o");
  proto.set_name("n");
  v1::Quota* quota = proto.add_quotas();
  quota->set_instance_type_id("type");
  quota->set_max_machines(3);
  EXPECT_EQ(ToCore(proto).priority, 0);  // unset is the default
  for (int32_t priority : {-1000, 7, 1000}) {
    proto.set_priority(priority);
    allocator::Tenant core = ToCore(proto);
    EXPECT_EQ(core.priority, priority);
    EXPECT_EQ(core.quota.at("type"), 3);
    EXPECT_EQ(ToProto(core).SerializeAsString(), proto.SerializeAsString());
  }
}

}  // namespace
}  // namespace nvlsched::daemon
