#include "bench/replay/wait_queue.h"

namespace nvlsched::replay {

WaitQueue::WaitQueue(int32_t gpus_per_machine)
    : singles_(static_cast<size_t>(gpus_per_machine)) {}

void WaitQueue::Push(uint32_t job, const JobShape& shape) {
  if (shape.kind == JobKind::kStrictBatch || shape.kind == JobKind::kCrossDomainBatch) {
    batches_.push_back(Entry{job, shape});
  } else {
    singles_[shape.gpus - 1].push_back(Entry{job, shape});
  }
  ++size_;
}

absl::Status WaitQueue::OfferAll(
    absl::FunctionRef<absl::StatusOr<bool>(uint32_t, const JobShape&)> offer) {
  bool batch_blocked = false;
  // Singles of this many GPUs or more cannot fit for the rest of the pass.
  size_t singles_blocked_from = singles_.size() + 1;
  while (true) {
    // The oldest job still eligible: the batch head or the head of a single queue.
    std::deque<Entry>* next = nullptr;
    size_t next_gpus = 0;
    if (!batch_blocked && !batches_.empty()) next = &batches_;
    for (size_t g = 1; g < singles_blocked_from && g <= singles_.size(); ++g) {
      std::deque<Entry>& queue = singles_[g - 1];
      if (queue.empty()) continue;
      if (next == nullptr || queue.front().job < next->front().job) {
        next = &queue;
        next_gpus = g;
      }
    }
    if (next == nullptr) return absl::OkStatus();
    const Entry entry = next->front();
    absl::StatusOr<bool> placed = offer(entry.job, entry.shape);
    if (!placed.ok()) return placed.status();
    if (*placed) {
      next->pop_front();
      --size_;
    } else if (next == &batches_) {
      batch_blocked = true;
    } else {
      singles_blocked_from = next_gpus;
    }
  }
}

}  // namespace nvlsched::replay
