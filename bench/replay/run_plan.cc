#include "bench/replay/run_plan.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/replay/policy_factory.h"

namespace nvlsched::replay {

absl::StatusOr<std::vector<RefusalMode>> ParseRefusalModes(absl::string_view list) {
  std::vector<RefusalMode> modes;
  for (absl::string_view mode : absl::StrSplit(list, ',')) {
    RefusalMode parsed;
    if (mode == "drop") {
      parsed = RefusalMode::kDrop;
    } else if (mode == "wait") {
      parsed = RefusalMode::kWait;
    } else if (mode == "queue") {
      parsed = RefusalMode::kQueue;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--on_refusal must be drop, wait, queue or a comma list of them (got \"", mode, "\")"));
    }
    if (std::find(modes.begin(), modes.end(), parsed) != modes.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--on_refusal names \"", mode, "\" twice"));
    }
    modes.push_back(parsed);
  }
  return modes;
}

absl::StatusOr<std::vector<bool>> ParsePreemption(absl::string_view list) {
  std::vector<bool> settings;
  for (absl::string_view setting : absl::StrSplit(list, ',')) {
    if (setting != "off" && setting != "on") {
      return absl::InvalidArgumentError(
          absl::StrCat("--preemption must be off, on or off,on (got \"", setting, "\")"));
    }
    const bool on = setting == "on";
    if (std::find(settings.begin(), settings.end(), on) != settings.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--preemption names \"", setting, "\" twice"));
    }
    settings.push_back(on);
  }
  return settings;
}

RefusalMode ModeThatRuns(const std::string& policy, RefusalMode mode) {
  return mode == RefusalMode::kQueue && !PolicyCanQueue(policy) ? RefusalMode::kWait : mode;
}

bool PreemptionThatRuns(const std::string& policy, RefusalMode mode, bool preemption) {
  return preemption && PolicyCanPreempt(policy) &&
         ModeThatRuns(policy, mode) == RefusalMode::kQueue;
}

std::vector<PlannedRun> PlanRuns(const ReplayOptions& base, const std::vector<RefusalMode>& modes,
                          const std::vector<bool>& preemption,
                          const std::vector<std::string>& policies) {
  std::vector<PlannedRun> runs;
  for (RefusalMode mode : modes) {
    for (const std::string& name : policies) {
      for (bool asked : preemption) {
        const RefusalMode runs_as = ModeThatRuns(name, mode);
        const bool preempts = PreemptionThatRuns(name, mode, asked);
        const bool seen = std::any_of(runs.begin(), runs.end(), [&](const PlannedRun& run) {
          return run.policy == name && ModeThatRuns(name, run.options.on_refusal) == runs_as &&
                 run.options.preemption == preempts;
        });
        if (seen) continue;
        PlannedRun run{name, base};
        run.options.on_refusal = mode;
        run.options.preemption = preempts;
        runs.push_back(std::move(run));
      }
    }
  }
  return runs;
}

}  // namespace nvlsched::replay
