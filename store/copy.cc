#include "store/copy.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace nvlsched::store {
namespace {

constexpr size_t kEventPage = 10000;

size_t RowCount(const LoadedState& s) {
  return s.instance_types.size() + s.domains.size() + s.machines.size() + s.tenants.size() +
         s.instances.size() + s.idempotency.size() + s.meta.size();
}

}  // namespace

absl::Status CopyStore(Store& from, Store& to, CopyReport* report) {
  absl::StatusOr<LoadedState> existing = to.LoadAll();
  if (!existing.ok()) return existing.status();
  if (RowCount(*existing) > 0 || existing->newest_event > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the destination ", to.path(), " is not empty (", RowCount(*existing),
        " rows, newest event ", existing->newest_event,
        "); copy into a new database: nothing is merged or overwritten"));
  }
  absl::StatusOr<LoadedState> state = from.LoadAll();
  if (!state.ok()) return state.status();
  std::vector<EventRow> events;
  for (uint64_t after = 0;;) {
    absl::StatusOr<std::vector<EventRow>> page = from.ReadEvents(after, kEventPage);
    if (!page.ok()) return page.status();
    if (page->empty()) break;
    after = page->back().sequence;
    for (EventRow& e : *page) events.push_back(std::move(e));
  }
  CopyReport r;
  r.machines = state->machines.size();
  r.instances = state->instances.size();
  r.events = events.size();
  r.rows = RowCount(*state) + events.size();
  if (absl::Status s = to.Commit(ChangeSetOf(*std::move(state), std::move(events))); !s.ok()) {
    return s;
  }
  if (report != nullptr) *report = r;
  return absl::OkStatus();
}

}  // namespace nvlsched::store
