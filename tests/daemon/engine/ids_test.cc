// Ids the daemon mints (daemon/engine/ids.h): random UUIDv4 and time-ordered UUIDv7.
#include "daemon/engine/ids.h"

#include <random>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/time/time.h"
#include "daemon/api/field_checks.h"
#include "gtest/gtest.h"

namespace nvlsched::daemon {
namespace {

TEST(IdsTest, RandomUuidIsVersionFourVariantOne) {
  absl::BitGen gen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = NewUuid(gen);
    ASSERT_TRUE(IsUuid(id)) << id;
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  }
}

TEST(IdsTest, TimeOrderedUuidCarriesTheMillisecondAndSortsByIt) {
  std::mt19937 gen(7);
  const absl::Time t0 = absl::FromUnixMillis(1'796'000'000'123);  // 2026-12-01
  const std::string id = NewTimeOrderedUuid(t0, gen);
  ASSERT_TRUE(IsUuid(id)) << id;
  // 1796000000123 ms = 0x01a2 29f1 287b: the first 48 bits, big-endian.
  EXPECT_EQ(id.substr(0, 13), "01a229f1-287b") << id;
  EXPECT_EQ(id[14], '7') << id;
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  // Minted a millisecond apart, later ids sort after earlier ones, across many steps.
  std::string previous;
  for (int ms = 0; ms < 5000; ms += 7) {
    const std::string next = NewTimeOrderedUuid(t0 + absl::Milliseconds(ms), gen);
    EXPECT_LT(previous, next);
    previous = next;
  }
  // Within one millisecond they differ (random bits) but share the time prefix.
  const std::string a = NewTimeOrderedUuid(t0, gen);
  const std::string b = NewTimeOrderedUuid(t0, gen);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.substr(0, 13), b.substr(0, 13));
  // Before 1970 counts as the epoch.
  EXPECT_EQ(NewTimeOrderedUuid(absl::UnixEpoch() - absl::Hours(1), gen).substr(0, 13),
            "00000000-0000");
}

}  // namespace
}  // namespace nvlsched::daemon
