// CopyStore: every row and event of one store into another, empty one: how a site moves from
// its SQLite file (or a snapshot of it) to PostgreSQL, and back (tools/copy_store_main.cc,
// nvlsched-copy-store).
//
// Thread-safety: as Store; `from` should not change while it is copied (copy a snapshot, or
// a database no daemon runs on: a SQLite file's lock refuses a second Store anyway).
#ifndef NVLSCHED_STORE_COPY_H_
#define NVLSCHED_STORE_COPY_H_

#include <cstddef>

#include "absl/status/status.h"
#include "store/store.h"

namespace nvlsched::store {

struct CopyReport {
  size_t machines = 0;
  size_t instances = 0;
  size_t events = 0;
  size_t rows = 0;  // top-level rows of every kind, events included
};

// Reads `from` whole (LoadAll and every retained event) and writes it to `to` as ONE Commit, so
// a failed copy leaves `to` empty. Insertion order is kept (LoadAll order).
// Errors: FAILED_PRECONDITION if `to` holds any row or event (nothing is merged or
// overwritten); those of LoadAll, ReadEvents and Commit otherwise.
absl::Status CopyStore(Store& from, Store& to, CopyReport* report = nullptr);

}  // namespace nvlsched::store

#endif  // NVLSCHED_STORE_COPY_H_
