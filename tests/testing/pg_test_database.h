// PgTestDatabase: a fresh, empty PostgreSQL database for one test, dropped again when the
// object goes away. The server is the one NVLSCHED_TEST_PG_URI names: tools/test.sh starts a
// throw-away one with tools/pg_dev.sh and exports its URI. Each Create() makes a database of
// its own, so tests running in parallel (ctest -j) never see each other's tables.
//
// Without NVLSCHED_TEST_PG_URI, Create() fails: the pg tests fail rather than skip, so a CI
// run without a server can never pass by testing nothing.
//
// Thread-safety: the static functions may be called from any thread; an object belongs to one.
#ifndef NVLSCHED_TESTS_TESTING_PG_TEST_DATABASE_H_
#define NVLSCHED_TESTS_TESTING_PG_TEST_DATABASE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace nvlsched::testing {

// The environment variable holding the admin URI of the test server.
inline constexpr char kTestPgUriEnv[] = "NVLSCHED_TEST_PG_URI";

class PgTestDatabase {
 public:
  // Runs CREATE DATABASE nvlsched_test_<pid>_<counter>_<random> on the server of AdminUri().
  // FAILED_PRECONDITION if NVLSCHED_TEST_PG_URI is unset or empty, INVALID_ARGUMENT if libpq
  // cannot parse it, UNAVAILABLE if the server cannot be reached, INTERNAL if the CREATE fails.
  static absl::StatusOr<PgTestDatabase> Create();

  // NVLSCHED_TEST_PG_URI, a libpq connection string (URI or key=value form) for a role that
  // may create databases. FAILED_PRECONDITION, saying how to get a server, if unset or empty.
  static absl::StatusOr<std::string> AdminUri();

  // `conninfo` (URI or key=value form) pointed at database `dbname`, as a URI
  // postgresql:///<dbname>?host=...&port=...&user=... keeping every other option it sets.
  // The URI form matters: nvlschedd's --db recognises PostgreSQL by "postgresql://".
  // INVALID_ARGUMENT, with libpq's reason, if libpq cannot parse `conninfo`.
  static absl::StatusOr<std::string> UriWithDatabase(std::string_view conninfo,
                                                     std::string_view dbname);

  PgTestDatabase(PgTestDatabase&& other) noexcept;
  PgTestDatabase& operator=(PgTestDatabase&& other) noexcept;
  PgTestDatabase(const PgTestDatabase&) = delete;
  PgTestDatabase& operator=(const PgTestDatabase&) = delete;
  // DROP DATABASE ... WITH (FORCE), which disconnects sessions still open on it. A failure is
  // reported on stderr and otherwise ignored: the server is throw-away.
  ~PgTestDatabase();

  // The database's URI (see UriWithDatabase), for libpq, libpqxx and nvlschedd --db.
  const std::string& uri() const { return uri_; }
  const std::string& name() const { return name_; }

 private:
  PgTestDatabase(std::string admin_uri, std::string name, std::string uri);
  void Drop();

  std::string admin_uri_;
  std::string name_;  // empty once moved from: nothing to drop
  std::string uri_;
};

}  // namespace nvlsched::testing

#endif  // NVLSCHED_TESTS_TESTING_PG_TEST_DATABASE_H_
