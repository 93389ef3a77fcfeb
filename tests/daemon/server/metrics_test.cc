// Metrics (daemon/server/metrics.h): the WAL checkpoint counters follow the store's cumulative
// counts, all three shown from the first scrape.
#include "daemon/server/metrics.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/store.h"

namespace nvlsched::daemon {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Metrics> StartOrFail() {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Start("");
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  return metrics.ok() ? *std::move(metrics) : nullptr;
}

TEST(MetricsTest, CheckpointCountersShowFromTheStart) {
  std::unique_ptr<Metrics> metrics = StartOrFail();
  ASSERT_NE(metrics, nullptr);
  const std::string scrape = metrics->Scrape();
  EXPECT_THAT(scrape, HasSubstr("nvlsched_wal_checkpoints_total{result=\"thread\"} 0"));
  EXPECT_THAT(scrape, HasSubstr("nvlsched_wal_checkpoints_total{result=\"writer\"} 0"));
  EXPECT_THAT(scrape, HasSubstr("nvlsched_wal_checkpoints_total{result=\"writer_rest\"} 0"));
  EXPECT_THAT(scrape, HasSubstr("nvlsched_wal_checkpoints_total{result=\"failed\"} 0"));
}

TEST(MetricsTest, CheckpointCountersFollowTheStoresCumulativeCounts) {
  std::unique_ptr<Metrics> metrics = StartOrFail();
  ASSERT_NE(metrics, nullptr);
  store::CheckpointCounts counts;
  counts.background = 4;
  counts.woken = 5;
  metrics->ObserveCheckpoints(counts);
  metrics->ObserveCheckpoints(counts);  // unchanged: nothing added
  counts.background = 7;
  counts.on_writer = 1;
  counts.rest_on_writer = 3;
  counts.failed = 2;
  metrics->ObserveCheckpoints(counts);
  const std::string scrape = metrics->Scrape();
  EXPECT_THAT(scrape, HasSubstr("nvlsched_wal_checkpoints_total{result=\"thread\"} 7"));
  EXPECT_THAT(scrape, HasSubstr("nvlsched_wal_checkpoints_total{result=\"writer\"} 1"));
  EXPECT_THAT(scrape, HasSubstr("nvlsched_wal_checkpoints_total{result=\"writer_rest\"} 3"));
  EXPECT_THAT(scrape, HasSubstr("nvlsched_wal_checkpoints_total{result=\"failed\"} 2"));
}

}  // namespace
}  // namespace nvlsched::daemon
