#include "tests/testing/pg_test_database.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <utility>

#include <pqxx/pqxx>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace nvlsched::testing {
namespace {

// Percent-encodes all but RFC 3986's unreserved characters (and '/', if `keep_slash`: libpq
// takes a socket directory in the query unencoded, which keeps the URI readable).
std::string UriEncode(std::string_view s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

// Unique across processes (pid), within one (counter) and across runs that reuse a pid on a
// long-lived server (random).
std::string NewDatabaseName() {
  static std::atomic<int> counter{0};
  std::random_device random;
  return absl::StrFormat("nvlsched_test_%d_%d_%08x", getpid(), counter++, random());
}

}  // namespace

absl::StatusOr<std::string> PgTestDatabase::AdminUri() {
  const char* uri = std::getenv(kTestPgUriEnv);
  if (uri == nullptr || *uri == '\0') {
    return absl::FailedPreconditionError(absl::StrCat(
        kTestPgUriEnv,
        " is not set: the pg tests need a PostgreSQL server. Run them through tools/test.sh, "
        "which starts one, or start one yourself: export ",
        kTestPgUriEnv, "=\"$(tools/pg_dev.sh start /tmp/nvlsched-pg)\""));
  }
  return std::string(uri);
}

absl::StatusOr<std::string> PgTestDatabase::UriWithDatabase(std::string_view conninfo,
                                                            std::string_view dbname) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(std::string(conninfo).c_str(), &error);
  if (options == nullptr) {
    std::string reason = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    return absl::InvalidArgumentError(
        absl::StrCat("not a libpq connection string: '", std::string(conninfo), "': ", reason));
  }
  std::string uri = absl::StrCat("postgresql:///", UriEncode(dbname, /*keep_slash=*/false));
  char separator = '?';
  for (const PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val == nullptr || std::string_view(option->keyword) == "dbname") continue;
    absl::StrAppend(&uri, std::string(1, separator), option->keyword, "=",
                    UriEncode(option->val, /*keep_slash=*/true));
    separator = '&';
  }
  PQconninfoFree(options);
  return uri;
}

absl::StatusOr<PgTestDatabase> PgTestDatabase::Create() {
  absl::StatusOr<std::string> admin_uri = AdminUri();
  if (!admin_uri.ok()) return admin_uri.status();
  std::string name = NewDatabaseName();
  absl::StatusOr<std::string> uri = UriWithDatabase(*admin_uri, name);
  if (!uri.ok()) return uri.status();
  try {
    pqxx::connection admin(*admin_uri);
    pqxx::nontransaction tx(admin);  // CREATE DATABASE cannot run inside a transaction
    tx.exec0("CREATE DATABASE " + tx.quote_name(name));
  } catch (const pqxx::broken_connection& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the test PostgreSQL at ", *admin_uri, ": ", e.what()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("CREATE DATABASE ", name, " on ", *admin_uri,
                                            " failed: ", e.what()));
  }
  return PgTestDatabase(*std::move(admin_uri), std::move(name), *std::move(uri));
}

PgTestDatabase::PgTestDatabase(std::string admin_uri, std::string name, std::string uri)
    : admin_uri_(std::move(admin_uri)), name_(std::move(name)), uri_(std::move(uri)) {}

PgTestDatabase::PgTestDatabase(PgTestDatabase&& other) noexcept
    : admin_uri_(std::move(other.admin_uri_)),
      name_(std::exchange(other.name_, std::string())),
      uri_(std::move(other.uri_)) {}

PgTestDatabase& PgTestDatabase::operator=(PgTestDatabase&& other) noexcept {
  if (this != &other) {
    Drop();
    admin_uri_ = std::move(other.admin_uri_);
    name_ = std::exchange(other.name_, std::string());
    uri_ = std::move(other.uri_);
  }
  return *this;
}

PgTestDatabase::~PgTestDatabase() { Drop(); }

void PgTestDatabase::Drop() {
  if (name_.empty()) return;
  try {
    pqxx::connection admin(admin_uri_);
    pqxx::nontransaction tx(admin);
    tx.exec0("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "PgTestDatabase: could not drop database %s: %s\n", name_.c_str(),
                 e.what());
  }
  name_.clear();
}

}  // namespace nvlsched::testing
