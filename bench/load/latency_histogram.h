// LatencyHistogram: a log-linear (HDR-like) histogram of non-negative integer values, used by
// nvlsched-load for call latencies in nanoseconds.
//
// Values below 2^kSubBucketBits are counted exactly. Above, every power-of-two range
// [2^m, 2^(m+1)) is split into 2^kSubBucketBits equal buckets, so a reported value is never
// more than 1/2^kSubBucketBits (0.78%) above the true value of any sample in its bucket.
// Values at or above 2^kMaxValueBits (about 18 minutes in ns) are clamped into the last bucket;
// Max() is kept exactly.
//
// All storage is allocated by the constructor: Record() never allocates and costs a
// count-leading-zeros, a shift and an increment. Percentile() walks the buckets (O(buckets)).
//
// Thread-safety: not thread-safe. nvlsched-load gives each client thread its own histograms and
// merges them with Merge() after the run, so the hot path takes no lock and no atomic.
#ifndef NVLSCHED_BENCH_LOAD_LATENCY_HISTOGRAM_H_
#define NVLSCHED_BENCH_LOAD_LATENCY_HISTOGRAM_H_

#include <cstdint>
#include <vector>

namespace nvlsched::load {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr int kMaxValueBits = 40;
  static constexpr int64_t kSubBucketCount = int64_t{1} << kSubBucketBits;

  LatencyHistogram();

  // Counts `value` once. Negative values count as 0. Cost: O(1), no allocation.
  void Record(int64_t value);

  // Adds every count of `other` to this histogram.
  void Merge(const LatencyHistogram& other);

  int64_t Count() const { return count_; }
  // 0 when empty.
  int64_t Min() const { return count_ == 0 ? 0 : min_; }
  int64_t Max() const { return max_; }
  double Mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The smallest recorded-bucket value v such that at least `percentile`% of the samples are
  // <= v, reported as the highest value of that bucket (never above Max(), never below
  // Min()); Max() exactly when that bucket is the last non-empty one. `percentile` is clamped
  // to [0, 100]; 0 when empty.
  int64_t Percentile(double percentile) const;

  // Bucket arithmetic, public for tests.
  static int BucketIndex(int64_t value);
  static int64_t BucketLowest(int index);
  static int64_t BucketHighest(int index);
  static int BucketCount();

 private:
  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  int64_t sum_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
};

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_LATENCY_HISTOGRAM_H_
