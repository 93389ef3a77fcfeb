// libFuzzer target: the JSON fleet file loader (daemon/fleet.h ReadFleetFile), and what the
// daemon does next with a fleet it loaded (--seed_fleet, ApplyFleet).
// Input: the file's bytes. Checks:
//   - ReadFleetFile answers OK or INVALID_ARGUMENT naming the file, never anything else;
//   - a loaded fleet survives FleetToJson -> ReadFleetFile unchanged;
//   - ValidateFleet answers OK or INVALID_ARGUMENT;
//   - a valid fleet applied to an empty State (inventory_ops.h ApplyFleet) either applies whole
//     (every machine counted, allocator invariants hold, applying it again changes no row) or
//     fails leaving the State empty (all or nothing).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/api/fleet.h"
#include "daemon/engine/inventory_ops.h"
#include "daemon/engine/state.h"
#include "daemon/api/validation.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace v1 = nvlsched::v1;
using nvlsched::daemon::State;

// One scratch file per fuzzing process (libFuzzer's -jobs/-workers run several).
const std::string& ScratchPath() {
  static const std::string* path = new std::string(
      absl::StrCat(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", "/nvlsched-fleet-fuzz-",
                   getpid(), ".json"));
  return *path;
}

void WriteScratch(const std::string& text) {
  std::FILE* file = std::fopen(ScratchPath().c_str(), "wb");
  FUZZ_CHECK(file != nullptr, ScratchPath());
  FUZZ_CHECK(std::fwrite(text.data(), 1, text.size(), file) == text.size(), ScratchPath());
  FUZZ_CHECK(std::fclose(file) == 0, ScratchPath());
}

bool SameFleet(const v1::Fleet& a, const v1::Fleet& b) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  return differencer.Compare(a, b);
}

void ApplyToEmptyState(const v1::Fleet& fleet) {
  State state;
  const State::JournalMark start = state.Mark();
  v1::ApplyFleetRequest request;
  *request.mutable_fleet() = fleet;
  v1::ApplyFleetResponse response;
  const absl::Status status = nvlsched::daemon::ApplyFleet(state, request, &response);
  const nvlsched::allocator::Allocator& alloc = state.allocator();
  const absl::Status invariants = alloc.CheckInvariants();
  FUZZ_CHECK(invariants.ok(), absl::StrCat(invariants.ToString(), "\n", fleet.DebugString()));
  if (!status.ok()) {
    // NOT_FOUND: validation resolves references case-insensitively, the allocator exactly, so
    // a machine naming its type as "83e71f8F-..." validates and then fails here (found by this
    // target; corpus regress_reference_in_other_case). Still all or nothing, checked below.
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument ||
                   status.code() == absl::StatusCode::kFailedPrecondition ||
                   status.code() == absl::StatusCode::kNotFound,
               status.ToString());
    FUZZ_CHECK(absl::StrContains(status.message(), "nothing of the fleet was applied"),
               status.ToString());
    size_t records = 0;
    alloc.ForEachInstanceType([&](const auto&) { ++records; });
    alloc.ForEachDomain([&](const auto&) { ++records; });
    alloc.ForEachTenant([&](const auto&) { ++records; });
    FUZZ_CHECK(records + alloc.machine_count() == 0 && !state.ChangedSince(start),
               absl::StrCat("a failed ApplyFleet left records behind: ", status.ToString()));
    return;
  }
  FUZZ_CHECK(alloc.machine_count() == static_cast<size_t>(fleet.machines_size()),
             fleet.DebugString());
  FUZZ_CHECK(response.machines() == fleet.machines_size(), fleet.DebugString());
  for (const v1::Machine& machine : fleet.machines()) {
    FUZZ_CHECK(alloc.FindMachine(machine.id()) != nullptr, machine.DebugString());
  }
  const State::JournalMark again = state.Mark();
  const absl::Status reapplied = nvlsched::daemon::ApplyFleet(state, request, &response);
  FUZZ_CHECK(reapplied.ok(), reapplied.ToString());
  FUZZ_CHECK(!state.ChangedSince(again),
             "applying the same fleet twice changed rows the second time");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  WriteScratch(std::string(reinterpret_cast<const char*>(data), size));
  absl::StatusOr<v1::Fleet> fleet = nvlsched::daemon::ReadFleetFile(ScratchPath());
  if (!fleet.ok()) {
    FUZZ_CHECK(fleet.status().code() == absl::StatusCode::kInvalidArgument,
               fleet.status().ToString());
    FUZZ_CHECK(absl::StrContains(fleet.status().message(), ScratchPath()),
               fleet.status().ToString());
    return 0;
  }

  WriteScratch(nvlsched::daemon::FleetToJson(*fleet));
  absl::StatusOr<v1::Fleet> reread = nvlsched::daemon::ReadFleetFile(ScratchPath());
  FUZZ_CHECK(reread.ok(), reread.status().ToString());
  FUZZ_CHECK(SameFleet(*reread, *fleet), nvlsched::daemon::FleetToJson(*fleet));

  const absl::Status valid = nvlsched::daemon::ValidateFleet(*fleet, {});
  FUZZ_CHECK(valid.ok() || valid.code() == absl::StatusCode::kInvalidArgument, valid.ToString());
  if (valid.ok()) ApplyToEmptyState(*fleet);
  return 0;
}
