// SendSchedule: the intended send times of one client thread's calls in nvlsched-load's
// open-loop mode (--rate), and the accounting of calls the concurrency cap held back.
//
// The run's schedule is global: call n (n = 0, 1, ...) is intended at start + n / rate, for every
// n < max_calls whose intended time is before `end`. Client thread t of T takes calls t, t + T,
// t + 2T, ..., so the threads together follow the one schedule and each sends at rate / T.
//
// Latency in the open loop is measured from a call's intended time, not from its actual send:
// a daemon that stalls makes the calls behind it wait, and that wait is part of their latency
// instead of vanishing from the samples (Gil Tene's "coordinated omission"; wrk2 does the same).
//
// A call due while every slot of the thread is busy (the --concurrency cap) waits for a slot:
//   late     issued after a slot freed up, latency still from its intended time;
//   skipped  still waiting when the run ended (at `end`, or when the caller stops): never sent.
// issued + skipped == scheduled once the schedule is finished.
//
// The class is pure: it reads no clock; the caller passes `now`. Tests drive it with made-up
// time points.
//
// Thread-safety: not thread-safe; each client thread owns one.
#ifndef NVLSCHED_BENCH_LOAD_SEND_SCHEDULE_H_
#define NVLSCHED_BENCH_LOAD_SEND_SCHEDULE_H_

#include <chrono>
#include <cstdint>
#include <optional>

namespace nvlsched::load {

class SendSchedule {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // One call to send now.
  struct Call {
    int64_t index = 0;  // n in the run's schedule
    TimePoint intended;
    bool late = false;  // it waited for a slot (see above)
  };

  // REQUIRES: rate_per_s > 0, 0 <= first < stride, start <= end, max_calls >= 0.
  SendSchedule(double rate_per_s, int64_t first, int64_t stride, int64_t max_calls,
               TimePoint start, TimePoint end);

  // start + n / rate, rounded to the nanosecond. Monotone in n.
  TimePoint Intended(int64_t n) const;

  // Calls of the whole run's schedule (every thread): min(max_calls, #{n : Intended(n) < end}).
  int64_t RunCalls() const { return run_calls_; }

  // The intended time of this thread's next call; nullopt once every call is issued or skipped.
  std::optional<TimePoint> Next() const;

  // The next call if it is due (Intended <= now), and advances past it. Call it only when a slot
  // is free: the caller sends the call it returns.
  std::optional<Call> TakeDue(TimePoint now);

  // Every slot was busy and one freed up at `now`: the calls still waiting whose intended time
  // is before `now` were held back by the cap, and count as late when TakeDue returns them.
  void SlotFreedAfterCap(TimePoint now);

  // Ends the schedule: every call not issued yet counts as skipped. Returns how many.
  int64_t SkipRest();

  // This thread's calls: scheduled() == issued() + skipped() + those still ahead.
  int64_t scheduled() const { return scheduled_; }
  int64_t issued() const { return issued_; }
  int64_t late() const { return late_; }
  int64_t skipped() const { return skipped_; }

 private:
  // Constant after construction.
  const double nanos_per_call_;
  const int64_t stride_;
  const TimePoint start_;
  int64_t run_calls_ = 0;
  int64_t scheduled_ = 0;

  int64_t next_ = 0;  // index of this thread's next call; >= run_calls_ when done
  // Calls intended before this instant that are still waiting were held back by the cap.
  std::optional<TimePoint> held_back_until_;
  int64_t issued_ = 0;
  int64_t late_ = 0;
  int64_t skipped_ = 0;
};

}  // namespace nvlsched::load

#endif  // NVLSCHED_BENCH_LOAD_SEND_SCHEDULE_H_
