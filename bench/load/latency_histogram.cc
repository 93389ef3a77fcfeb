#include "bench/load/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace nvlsched::load {
namespace {

constexpr int64_t kLargestValue = (int64_t{1} << LatencyHistogram::kMaxValueBits) - 1;

// Index of the highest set bit. REQUIRES: value > 0.
int HighestBit(int64_t value) { return 63 - __builtin_clzll(static_cast<uint64_t>(value)); }

// Width exponent of the buckets of `index`: bucket width is 2^BucketShift(index).
int BucketShift(int index) {
  const int group = index >> LatencyHistogram::kSubBucketBits;
  return group == 0 ? 0 : group - 1;
}

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(BucketCount(), 0) {}

int LatencyHistogram::BucketCount() {
  return static_cast<int>((kMaxValueBits - kSubBucketBits + 1) * kSubBucketCount);
}

int LatencyHistogram::BucketIndex(int64_t value) {
  value = std::clamp<int64_t>(value, 0, kLargestValue);
  if (value < kSubBucketCount) return static_cast<int>(value);
  const int shift = HighestBit(value) - kSubBucketBits;
  const int64_t sub_bucket = (value >> shift) - kSubBucketCount;
  return static_cast<int>((shift + 1) * kSubBucketCount + sub_bucket);
}

int64_t LatencyHistogram::BucketLowest(int index) {
  if (index < kSubBucketCount) return index;
  const int shift = BucketShift(index);
  const int64_t sub_bucket = index & (kSubBucketCount - 1);
  return (kSubBucketCount + sub_bucket) << shift;
}

int64_t LatencyHistogram::BucketHighest(int index) {
  return BucketLowest(index) + (int64_t{1} << BucketShift(index)) - 1;
}

void LatencyHistogram::Record(int64_t value) {
  if (value < 0) value = 0;
  ++counts_[BucketIndex(value)];
  min_ = count_ == 0 ? value : std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += value;
  ++count_;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
  count_ += other.count_;
}

int64_t LatencyHistogram::Percentile(double percentile) const {
  if (count_ == 0) return 0;
  percentile = std::clamp(percentile, 0.0, 100.0);
  // The rank of the sample asked for, 1-based: p90 of 1..100 is the 90th sample. The relative
  // nudge keeps 0.9 * 100 = 90.00000000000001 from becoming rank 91.
  const double exact_rank = percentile / 100.0 * static_cast<double>(count_);
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(exact_rank * (1.0 - 1e-12))));
  int64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      // The last non-empty bucket holds the maximum, which is known exactly.
      if (seen == count_) return max_;
      return std::clamp(BucketHighest(static_cast<int>(i)), Min(), max_);
    }
  }
  return max_;
}

}  // namespace nvlsched::load
