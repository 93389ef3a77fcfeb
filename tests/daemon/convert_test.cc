// Tests daemon/convert.h: money conversions.
#include "daemon/convert.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace nvlsched::daemon {
namespace {

TEST(PriceToMicrosTest, RoundsToTheNearestMicroDollar) {
  EXPECT_EQ(PriceToMicros(42.0), 42000000);
  EXPECT_EQ(PriceToMicros(0.0000004), 0);
  EXPECT_EQ(PriceToMicros(0.0000006), 1);
  EXPECT_EQ(PriceToMicros(PriceFromMicros(123456789)), 123456789);
}

// Regression (tests/fuzz request targets, corpus regress_max_price_*): a price beyond int64
// micro-dollars came back as INT64_MIN, so CreateInstance refused max_price_per_hour=1e300 as
// below a $42 type's price.
TEST(PriceToMicrosTest, SaturatesBeyondInt64) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(PriceToMicros(1e300), kMax);
  EXPECT_EQ(PriceToMicros(9.3e12), kMax);
  EXPECT_EQ(PriceToMicros(-1e300), std::numeric_limits<int64_t>::min());
  EXPECT_GT(PriceToMicros(9.1e12), PriceToMicros(42.0));
}

}  // namespace
}  // namespace nvlsched::daemon
