#include "bench/load/latency_histogram.h"

#include <cstdint>
#include <random>

#include "gtest/gtest.h"

namespace nvlsched::load {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.Count(), 0);
  EXPECT_EQ(h.Percentile(50), 0);
  EXPECT_EQ(h.Max(), 0);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Mean(), 0.0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Count(), 100);
  EXPECT_EQ(h.Percentile(50), 50);
  EXPECT_EQ(h.Percentile(90), 90);
  EXPECT_EQ(h.Percentile(99), 99);
  EXPECT_EQ(h.Percentile(100), 100);
  EXPECT_EQ(h.Percentile(0), 1);
  EXPECT_EQ(h.Min(), 1);
  EXPECT_EQ(h.Max(), 100);
  EXPECT_DOUBLE_EQ(h.Mean(), 50.5);
}

TEST(LatencyHistogramTest, LargeValuesWithinRelativePrecision) {
  // 1..100000 microseconds in nanoseconds: percentile k is k * 1000 us exactly.
  LatencyHistogram h;
  for (int64_t us = 1; us <= 100000; ++us) h.Record(us * 1000);
  const double precision = 1.0 / LatencyHistogram::kSubBucketCount;
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double exact = p / 100.0 * 100000 * 1000;
    const int64_t got = h.Percentile(p);
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(got, exact * (1 + precision)) << "p" << p;
  }
  EXPECT_EQ(h.Max(), 100000 * 1000);
  EXPECT_EQ(h.Percentile(100), 100000 * 1000);
}

TEST(LatencyHistogramTest, SkewedDistributionTail) {
  // 990 fast calls of 1 ms and 10 slow ones of 2 s: p99 is still fast, p99.5 is slow.
  LatencyHistogram h;
  for (int i = 0; i < 990; ++i) h.Record(1'000'000);
  for (int i = 0; i < 10; ++i) h.Record(2'000'000'000);
  EXPECT_NEAR(h.Percentile(99), 1'000'000, 1'000'000 / 128);
  EXPECT_NEAR(h.Percentile(99.5), 2'000'000'000, 2'000'000'000 / 128);
  EXPECT_EQ(h.Max(), 2'000'000'000);
}

TEST(LatencyHistogramTest, BucketsAreContiguousAndOrdered) {
  for (int i = 1; i < LatencyHistogram::BucketCount(); ++i) {
    ASSERT_EQ(LatencyHistogram::BucketLowest(i), LatencyHistogram::BucketHighest(i - 1) + 1)
        << "bucket " << i;
  }
  for (int64_t v : {int64_t{0}, int64_t{127}, int64_t{128}, int64_t{255}, int64_t{256},
                    int64_t{1000}, int64_t{123456789}, int64_t{1} << 39}) {
    const int i = LatencyHistogram::BucketIndex(v);
    EXPECT_LE(LatencyHistogram::BucketLowest(i), v);
    EXPECT_GE(LatencyHistogram::BucketHighest(i), v);
  }
}

TEST(LatencyHistogramTest, OutOfRangeValuesAreClampedButMaxIsExact) {
  LatencyHistogram h;
  h.Record(-5);
  h.Record(int64_t{1} << 50);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), int64_t{1} << 50);
  EXPECT_EQ(h.Percentile(100), int64_t{1} << 50);
  EXPECT_EQ(h.Percentile(50), 0);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> latency(13.0, 1.0);  // around 0.5 ms in ns
  LatencyHistogram a, b, all;
  for (int i = 0; i < 20000; ++i) {
    const int64_t v = static_cast<int64_t>(latency(random));
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  LatencyHistogram merged;
  merged.Merge(a);
  merged.Merge(b);
  EXPECT_EQ(merged.Count(), all.Count());
  EXPECT_EQ(merged.Min(), all.Min());
  EXPECT_EQ(merged.Max(), all.Max());
  EXPECT_DOUBLE_EQ(merged.Mean(), all.Mean());
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.99, 100.0}) {
    EXPECT_EQ(merged.Percentile(p), all.Percentile(p)) << "p" << p;
  }
}

TEST(LatencyHistogramTest, MergeIntoEmptyAndFromEmpty) {
  LatencyHistogram a, empty;
  a.Record(500);
  a.Record(700);
  a.Merge(empty);
  EXPECT_EQ(a.Count(), 2);
  EXPECT_EQ(a.Min(), 500);
  empty.Merge(a);
  EXPECT_EQ(empty.Count(), 2);
  EXPECT_EQ(empty.Min(), 500);
  EXPECT_EQ(empty.Max(), 700);
}

}  // namespace
}  // namespace nvlsched::load
