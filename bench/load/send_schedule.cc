#include "bench/load/send_schedule.h"

#include <algorithm>
#include <cmath>

namespace nvlsched::load {
namespace {

// Calls of `first`, first + stride, ... below `limit`.
int64_t StridedCount(int64_t first, int64_t stride, int64_t limit) {
  return first < limit ? (limit - first + stride - 1) / stride : 0;
}

}  // namespace

SendSchedule::SendSchedule(double rate_per_s, int64_t first, int64_t stride, int64_t max_calls,
                           TimePoint start, TimePoint end)
    : nanos_per_call_(1e9 / rate_per_s), stride_(stride), start_(start), next_(first) {
  // The count of n with Intended(n) < end, from the division, then corrected for the rounding
  // of Intended (at most a step or two either way).
  const double window_ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
  const double estimate = std::ceil(window_ns / nanos_per_call_);
  int64_t count = estimate >= static_cast<double>(max_calls) ? max_calls
                                                             : static_cast<int64_t>(estimate);
  for (int step = 0; step < 4 && count > 0 && Intended(count - 1) >= end; ++step) --count;
  for (int step = 0; step < 4 && count < max_calls && Intended(count) < end; ++step) ++count;
  run_calls_ = count;
  scheduled_ = StridedCount(first, stride, run_calls_);
}

SendSchedule::TimePoint SendSchedule::Intended(int64_t n) const {
  return start_ + std::chrono::nanoseconds(
                      std::llround(static_cast<double>(n) * nanos_per_call_));
}

std::optional<SendSchedule::TimePoint> SendSchedule::Next() const {
  if (next_ >= run_calls_) return std::nullopt;
  return Intended(next_);
}

std::optional<SendSchedule::Call> SendSchedule::TakeDue(TimePoint now) {
  if (next_ >= run_calls_) return std::nullopt;
  const TimePoint intended = Intended(next_);
  if (intended > now) return std::nullopt;
  Call call{next_, intended, held_back_until_.has_value() && intended < *held_back_until_};
  ++issued_;
  if (call.late) ++late_;
  next_ += stride_;
  return call;
}

void SendSchedule::SlotFreedAfterCap(TimePoint now) {
  held_back_until_ = held_back_until_.has_value() ? std::max(*held_back_until_, now) : now;
}

int64_t SendSchedule::SkipRest() {
  const int64_t rest = scheduled_ - issued_ - skipped_;
  skipped_ += rest;
  next_ = std::max(next_, run_calls_);
  return rest;
}

}  // namespace nvlsched::load
