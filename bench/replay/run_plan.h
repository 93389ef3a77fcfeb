// Which replays one nvlsched-replay invocation runs: every policy of --policies in every
// mode of --on_refusal, with and without preemption as --preemption asks, minus the runs that
// would repeat another (a baseline asked to queue runs FIFO wait mode; asked to preempt, it
// runs without: it has no notion of spot). The comma-list flags are parsed here too.
// Thread-safety: pure functions.
#ifndef NVLSCHED_BENCH_REPLAY_RUN_PLAN_H_
#define NVLSCHED_BENCH_REPLAY_RUN_PLAN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/replay/simulator.h"

namespace nvlsched::replay {

// "drop", "wait", "queue" or a comma list of them, in order. INVALID_ARGUMENT for another
// word or one named twice (the message names the flag --on_refusal).
absl::StatusOr<std::vector<RefusalMode>> ParseRefusalModes(absl::string_view list);
// "off", "on", "off,on" or "on,off": the settings in order (true = on). INVALID_ARGUMENT as
// above (--preemption).
absl::StatusOr<std::vector<bool>> ParsePreemption(absl::string_view list);

// The mode a policy runs when asked for `mode`: a policy without a queue of its own runs
// kWait for kQueue.
RefusalMode ModeThatRuns(const std::string& policy, RefusalMode mode);
// Whether a policy preempts when asked to in `mode`: only best-fit, only in queue mode.
bool PreemptionThatRuns(const std::string& policy, RefusalMode mode, bool preemption);

// One replay to run: a policy with its options (on_refusal and preemption set).
struct PlannedRun {
  std::string policy;
  ReplayOptions options;
};

// Every (policy, mode, preemption) from `base`, by mode, then policy, then preemption (so a
// policy's runs with and without preemption sit side by side); options.preemption is what
// runs (PreemptionThatRuns); a run that would repeat an earlier one is left out.
std::vector<PlannedRun> PlanRuns(const ReplayOptions& base, const std::vector<RefusalMode>& modes,
                          const std::vector<bool>& preemption,
                          const std::vector<std::string>& policies);

}  // namespace nvlsched::replay

#endif  // NVLSCHED_BENCH_REPLAY_RUN_PLAN_H_
