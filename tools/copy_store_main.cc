// nvlsched-copy-store: copies an nvlsched database into a new, empty one, either way between
// SQLite and PostgreSQL (store/copy.h): how a site moves its SQLite file (or a snapshot of it)
// onto the PostgreSQL its active/standby daemons will share, or takes a PostgreSQL database
// back into one file. Stop the daemon first, or copy a snapshot (AdminService.CreateSnapshot):
// a SQLite file in use is refused (its lock), and a PostgreSQL database that a leader writes
// would be copied mid-stream.
//
//   nvlsched-copy-store --from=var/nvlsched.db --to=postgresql://nvlsched@db1/nvlsched
//   nvlsched-copy-store --from=postgresql://nvlsched@db1/nvlsched --to=/backups/nvl.db
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "store/copy.h"
#include "store/store.h"

ABSL_FLAG(std::string, from, "", "source: a SQLite file or snapshot, or a PostgreSQL URI");
ABSL_FLAG(std::string, to, "",
          "destination, empty or new: a SQLite file (created) or a PostgreSQL URI of an "
          "existing database (the tables are created)");

namespace {

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "nvlsched-copy-store: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "copies an nvlsched database into a new, empty one (SQLite <-> PostgreSQL).\n"
      "Usage: nvlsched-copy-store --from=SRC --to=DST");
  absl::ParseCommandLine(argc, argv);
  const std::string from = absl::GetFlag(FLAGS_from);
  const std::string to = absl::GetFlag(FLAGS_to);
  if (from.empty() || to.empty()) {
    std::fprintf(stderr, "nvlsched-copy-store: name both --from and --to\n");
    return 2;
  }
  nvlsched::store::StoreOptions source_options;
  source_options.path = from;
  absl::StatusOr<std::unique_ptr<nvlsched::store::Store>> source =
      nvlsched::store::Store::Open(source_options);
  if (!source.ok()) return Fail("opening --from", source.status());
  nvlsched::store::StoreOptions dest_options;
  dest_options.path = to;
  absl::StatusOr<std::unique_ptr<nvlsched::store::Store>> dest =
      nvlsched::store::Store::Open(dest_options);
  if (!dest.ok()) return Fail("opening --to", dest.status());
  nvlsched::store::CopyReport report;
  if (absl::Status s = nvlsched::store::CopyStore(**source, **dest, &report); !s.ok()) {
    return Fail("copying", s);
  }
  std::printf("copied %zu machines, %zu instances, %zu events (%zu rows) from %s to %s\n",
              report.machines, report.instances, report.events, report.rows,
              (*source)->path().c_str(), (*dest)->path().c_str());
  return 0;
}
