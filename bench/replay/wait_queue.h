// WaitQueue: where refused jobs wait in --on_refusal=wait mode, and the order in which they
// are offered again whenever capacity is freed.
//
// The rule (kept simple on purpose, as a FIFO scheduler with backfill for small jobs):
//   - Batches (strict and cross-domain) are strictly FIFO among themselves: only the oldest
//     waiting batch is offered; while it waits, every later batch waits behind it, even one
//     that would fit (head-of-line blocking, so a big batch is never starved by small ones).
//   - Singles (GPU-granular and whole-machine) backfill: they are offered in arrival order
//     whether or not a batch is waiting, so they may overtake a waiting batch.
//   - One pass offers jobs in arrival order (batch head and singles interleaved by arrival).
//     Whether a single fits is monotone in its GPU count for every policy here (it fits iff
//     some machine has that many free GPUs), so once a single of g GPUs is refused, no
//     single of g or more GPUs is offered again in that pass. A pass therefore costs
//     O((placed + G) log G), not O(queue length).
// Thread-safety: none; one owner.
#ifndef NVLSCHED_BENCH_REPLAY_WAIT_QUEUE_H_
#define NVLSCHED_BENCH_REPLAY_WAIT_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "bench/replay/placement_policy.h"

namespace nvlsched::replay {

class WaitQueue {
 public:
  explicit WaitQueue(int32_t gpus_per_machine);

  // Appends a job. Jobs must be pushed in arrival order (`job` = arrival index).
  void Push(uint32_t job, const JobShape& shape);
  size_t size() const { return size_; }
  bool batch_waiting() const { return !batches_.empty(); }

  // One pass under the rule above. `offer` places the job (true), refuses it (false) or
  // fails (the error ends the pass and is returned). Placed jobs leave the queue.
  // REQUIRES: `offer` does not push to this queue.
  absl::Status OfferAll(absl::FunctionRef<absl::StatusOr<bool>(uint32_t, const JobShape&)> offer);

 private:
  struct Entry {
    uint32_t job;
    JobShape shape;
  };
  // singles_[g - 1]: waiting singles of g GPUs (g = G for whole-machine singles).
  std::vector<std::deque<Entry>> singles_;
  std::deque<Entry> batches_;
  size_t size_ = 0;
};

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_WAIT_QUEUE_H_
