#include "absl/status/status.h"
int probe() { return absl::OkStatus().ok() ? 0 : 1; }
