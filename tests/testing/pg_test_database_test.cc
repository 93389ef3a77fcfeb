// Tests tests/testing/pg_test_database.h against the server NVLSCHED_TEST_PG_URI names
// (tools/test.sh starts one; see tools/pg_dev.sh).
#include "tests/testing/pg_test_database.h"

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include <pqxx/pqxx>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nvlsched::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string CurrentDatabase(const std::string& uri) {
  pqxx::connection conn(uri);
  pqxx::nontransaction tx(conn);
  return tx.exec1("SELECT current_database()")[0].as<std::string>();
}

bool DatabaseExists(const std::string& name) {
  pqxx::connection admin(*PgTestDatabase::AdminUri());
  pqxx::nontransaction tx(admin);
  return tx.exec1("SELECT count(*) FROM pg_database WHERE datname = " + tx.quote(name))[0]
             .as<int>() == 1;
}

// Sets (or, with nullopt, unsets) an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(PgTestDatabaseTest, CreatesDistinctConnectableDatabases) {
  absl::StatusOr<PgTestDatabase> a = PgTestDatabase::Create();
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<PgTestDatabase> b = PgTestDatabase::Create();
  ASSERT_TRUE(b.ok()) << b.status();

  EXPECT_NE(a->name(), b->name());
  EXPECT_NE(a->uri(), b->uri());
  EXPECT_THAT(a->name(), StartsWith("nvlsched_test_"));
  EXPECT_THAT(a->uri(), StartsWith("postgresql:///" + a->name() + "?"));
  EXPECT_EQ(CurrentDatabase(a->uri()), a->name());
  EXPECT_EQ(CurrentDatabase(b->uri()), b->name());
}

TEST(PgTestDatabaseTest, DestructionDropsTheDatabaseEvenWithASessionOpen) {
  std::string name;
  {
    absl::StatusOr<PgTestDatabase> db = PgTestDatabase::Create();
    ASSERT_TRUE(db.ok()) << db.status();
    name = db->name();
    ASSERT_TRUE(DatabaseExists(name));
    pqxx::connection open_session(db->uri());  // WITH (FORCE) must disconnect it
    db = absl::FailedPreconditionError("gone");  // destroys the database object
    EXPECT_FALSE(DatabaseExists(name));
  }
  EXPECT_FALSE(DatabaseExists(name));
}

TEST(PgTestDatabaseTest, MovingTransfersOwnership) {
  absl::StatusOr<PgTestDatabase> created = PgTestDatabase::Create();
  ASSERT_TRUE(created.ok()) << created.status();
  std::string name = created->name();
  std::optional<PgTestDatabase> moved;
  moved.emplace(*std::move(created));
  created = absl::CancelledError("moved from");  // the moved-from object drops nothing
  ASSERT_TRUE(DatabaseExists(name));
  EXPECT_EQ(CurrentDatabase(moved->uri()), name);

  absl::StatusOr<PgTestDatabase> other = PgTestDatabase::Create();
  ASSERT_TRUE(other.ok()) << other.status();
  std::string other_name = other->name();
  *moved = *std::move(other);  // drops `name`, now owns `other_name`
  EXPECT_FALSE(DatabaseExists(name));
  EXPECT_TRUE(DatabaseExists(other_name));
  moved.reset();
  EXPECT_FALSE(DatabaseExists(other_name));
}

TEST(PgTestDatabaseTest, FailsWithoutAServerUri) {
  for (std::optional<std::string> value :
       {std::optional<std::string>(), std::optional<std::string>("")}) {
    ScopedEnv env(kTestPgUriEnv, value);
    absl::StatusOr<PgTestDatabase> db = PgTestDatabase::Create();
    ASSERT_FALSE(db.ok());
    EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(db.status().message(), HasSubstr("NVLSCHED_TEST_PG_URI is not set"));
    EXPECT_THAT(db.status().message(), HasSubstr("tools/test.sh"));
    EXPECT_THAT(db.status().message(), HasSubstr("tools/pg_dev.sh start"));
  }
}

TEST(PgTestDatabaseTest, FailsUnavailableWhenNoServerListens) {
  ScopedEnv env(kTestPgUriEnv, "postgresql:///postgres?host=/nonexistent&port=5432&user=nvlsched");
  absl::StatusOr<PgTestDatabase> db = PgTestDatabase::Create();
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(db.status().message(), HasSubstr("cannot connect to the test PostgreSQL"));
}

TEST(PgTestDatabaseTest, UriWithDatabaseKeepsEveryOtherOption) {
  absl::StatusOr<std::string> from_uri = PgTestDatabase::UriWithDatabase(
      "postgresql:///postgres?host=/tmp/pg%20dir&port=5432&user=nvlsched", "db_1");
  ASSERT_TRUE(from_uri.ok()) << from_uri.status();
  EXPECT_EQ(*from_uri, "postgresql:///db_1?user=nvlsched&host=/tmp/pg%20dir&port=5432");

  absl::StatusOr<std::string> from_keywords = PgTestDatabase::UriWithDatabase(
      "host=/tmp/pg port=5433 user=me password='p&w=' dbname=postgres sslmode=disable", "db_2");
  ASSERT_TRUE(from_keywords.ok()) << from_keywords.status();
  EXPECT_EQ(*from_keywords,
            "postgresql:///db_2?user=me&password=p%26w%3D&host=/tmp/pg&port=5433&sslmode=disable");
}

TEST(PgTestDatabaseTest, UriWithDatabaseRejectsWhatLibpqCannotParse) {
  absl::StatusOr<std::string> uri = PgTestDatabase::UriWithDatabase("host=/tmp nonsense", "db");
  ASSERT_FALSE(uri.ok());
  EXPECT_EQ(uri.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(uri.status().message(),
              HasSubstr("not a libpq connection string: 'host=/tmp nonsense'"));
}

}  // namespace
}  // namespace nvlsched::testing
