// Unit tests of daemon/auth.h: the tokens file, JWT checks (every claim and the pinned
// algorithm), the role x permission x org table, and the loopback rule of --auth=none.
#include "daemon/auth.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/substitute.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_tokens.h"

namespace nvlsched::daemon {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------- tokens file

constexpr char kTenantToken[] = "tenant-token-1";
constexpr char kAdminToken[] = "admin-token-1";

std::string TokensFile() {
  return absl::StrCat("# hash subject org roles\n", Sha256Hex(kTenantToken),
                      "  alice  acme  FORGE_TENANT_ADMIN   # a tenant\n\n",
                      Sha256Hex(kAdminToken), "\tops\t-\tFORGE_PROVIDER_ADMIN,FORGE_PROVIDER_VIEWER\n");
}

TEST(Sha256HexTest, KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TokensFileTest, MapsTokensToPrincipals) {
  auto auth = TokensFileAuthenticator::Parse(TokensFile(), "tokens.txt");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_EQ((*auth)->size(), 2u);
  absl::StatusOr<Principal> tenant = (*auth)->Authenticate(kTenantToken, absl::Now());
  ASSERT_TRUE(tenant.ok()) << tenant.status();
  EXPECT_EQ(tenant->subject, "alice");
  EXPECT_EQ(tenant->org, "acme");
  EXPECT_TRUE(tenant->Has(Role::kTenantAdmin));
  EXPECT_FALSE(tenant->Has(Role::kProviderAdmin));
  absl::StatusOr<Principal> admin = (*auth)->Authenticate(kAdminToken, absl::Now());
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_EQ(admin->org, "");
  EXPECT_TRUE(admin->Has(Role::kProviderAdmin));
  EXPECT_TRUE(admin->Has(Role::kProviderViewer));
  EXPECT_EQ(RoleNames(*admin), "FORGE_PROVIDER_ADMIN,FORGE_PROVIDER_VIEWER");

  absl::StatusOr<Principal> unknown = (*auth)->Authenticate("guess", absl::Now());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(unknown.status().message(), HasSubstr("not in the tokens file"));
}

TEST(TokensFileTest, RejectsMalformedLinesNamingTheLine) {
  const std::string hash = Sha256Hex("x");
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {absl::StrCat(hash, " alice acme\n"), "tokens.txt:1: found 3 fields, not 4"},
      {"\nabc alice acme FORGE_TENANT_ADMIN\n", "tokens.txt:2: the first field must be"},
      {absl::StrCat(hash, " alice acme FORGE_ROOT\n"), "unknown role 'FORGE_ROOT'"},
      {absl::StrCat(hash, " alice - FORGE_TENANT_ADMIN\n"), "FORGE_TENANT_ADMIN needs an org"},
      {absl::StrCat(hash, " a acme FORGE_TENANT_ADMIN\n", hash, " b - FORGE_PROVIDER_ADMIN\n"),
       "tokens.txt:2: this token hash is listed twice"},
  };
  for (const Case& c : cases) {
    auto auth = TokensFileAuthenticator::Parse(c.text, "tokens.txt");
    EXPECT_EQ(auth.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(auth.status().message(), HasSubstr(c.message)) << c.text;
  }
  EXPECT_EQ(TokensFileAuthenticator::Load("/nonexistent/tokens").status().code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------- JWT

constexpr char kIssuer[] = "https://auth.example.test";
constexpr char kAudience[] = "nvlsched";
constexpr char kSecret[] = "0123456789abcdef0123456789abcdef-hs256";

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    keys_ = new testing::RsaKeyPair(testing::MakeRsaKeyPair());
    other_keys_ = new testing::RsaKeyPair(testing::MakeRsaKeyPair());
  }
  static void TearDownTestSuite() {
    delete keys_;
    delete other_keys_;
  }

  std::unique_ptr<JwtAuthenticator> Rs256() {
    auto auth = JwtAuthenticator::Create({"RS256", keys_->public_pem, kIssuer, kAudience});
    EXPECT_TRUE(auth.ok()) << auth.status();
    return auth.ok() ? *std::move(auth) : nullptr;
  }
  std::unique_ptr<JwtAuthenticator> Hs256() {
    auto auth = JwtAuthenticator::Create({"HS256", kSecret, kIssuer, kAudience});
    EXPECT_TRUE(auth.ok()) << auth.status();
    return auth.ok() ? *std::move(auth) : nullptr;
  }
  // Claims with exp = now + exp_in seconds; `extra` is spliced into the object.
  static std::string Claims(int64_t exp_in, const std::string& extra = "",
                            const std::string& iss = kIssuer,
                            const std::string& aud = absl::StrCat("\"", kAudience, "\"")) {
    return absl::Substitute(
        R"({"sub":"alice","org":"acme","roles":["FORGE_TENANT_ADMIN","SOMETHING_ELSE"],)"
        R"("iss":"$0","aud":$1,"exp":$2$3})",
        iss, aud, absl::ToUnixSeconds(absl::Now()) + exp_in, extra);
  }
  std::string SignRs(const std::string& claims) {
    return testing::SignJwt("RS256", keys_->private_pem, claims);
  }

  static testing::RsaKeyPair* keys_;
  static testing::RsaKeyPair* other_keys_;
};
testing::RsaKeyPair* JwtTest::keys_ = nullptr;
testing::RsaKeyPair* JwtTest::other_keys_ = nullptr;

void ExpectRejected(const absl::StatusOr<Principal>& result, const std::string& why) {
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << why;
  EXPECT_THAT(result.status().message(), HasSubstr(why));
}

TEST_F(JwtTest, AcceptsAGoodRs256TokenAndReadsOrgAndRoles) {
  absl::StatusOr<Principal> p = Rs256()->Authenticate(SignRs(Claims(600)), absl::Now());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->subject, "alice");
  EXPECT_EQ(p->org, "acme");
  EXPECT_EQ(RoleNames(*p), "FORGE_TENANT_ADMIN");  // unknown roles are ignored
}

TEST_F(JwtTest, AcceptsAnAudienceListContainingOurs) {
  const std::string claims = Claims(600, "", kIssuer, R"(["other","nvlsched"])");
  EXPECT_TRUE(Rs256()->Authenticate(SignRs(claims), absl::Now()).ok());
  const std::string wrong = Claims(600, "", kIssuer, R"(["other","more"])");
  ExpectRejected(Rs256()->Authenticate(SignRs(wrong), absl::Now()), "not for audience 'nvlsched'");
}

TEST_F(JwtTest, ChecksExpiryWithLeeway) {
  ExpectRejected(Rs256()->Authenticate(SignRs(Claims(-120)), absl::Now()), "the token expired at");
  // 10 s past exp is inside the 30 s leeway.
  EXPECT_TRUE(Rs256()->Authenticate(SignRs(Claims(-10)), absl::Now()).ok());
  ExpectRejected(Rs256()->Authenticate(
                     SignRs(R"({"iss":"https://auth.example.test","aud":"nvlsched","org":"a"})"),
                     absl::Now()),
                 "no 'exp' claim");
  ExpectRejected(Rs256()->Authenticate(
                     SignRs(R"({"iss":"https://auth.example.test","aud":"nvlsched","exp":"soon"})"),
                     absl::Now()),
                 "claim 'exp' must be a number");
}

TEST_F(JwtTest, ChecksNotBefore) {
  const int64_t later = absl::ToUnixSeconds(absl::Now()) + 3600;
  ExpectRejected(Rs256()->Authenticate(SignRs(Claims(7200, absl::StrCat(",\"nbf\":", later))),
                                       absl::Now()),
                 "not valid before");
  const int64_t earlier = absl::ToUnixSeconds(absl::Now()) - 60;
  EXPECT_TRUE(Rs256()
                  ->Authenticate(SignRs(Claims(600, absl::StrCat(",\"nbf\":", earlier))),
                                 absl::Now())
                  .ok());
}

TEST_F(JwtTest, ChecksIssuerAndAudience) {
  ExpectRejected(Rs256()->Authenticate(SignRs(Claims(600, "", "https://evil.test")), absl::Now()),
                 "issuer 'https://evil.test' is not 'https://auth.example.test'");
  ExpectRejected(Rs256()->Authenticate(SignRs(Claims(600, "", kIssuer, "\"someone-else\"")),
                                       absl::Now()),
                 "not for audience 'nvlsched'");
}

TEST_F(JwtTest, RejectsBadSignaturesAndOtherAlgorithms) {
  const std::string claims = Claims(600);
  ExpectRejected(Rs256()->Authenticate(testing::SignJwt("RS256", other_keys_->private_pem, claims),
                                       absl::Now()),
                 "valid signature");
  // Algorithm confusion: an HS256 token whose HMAC key is our RSA public key. libjwt accepts
  // its signature; only the pinned algorithm stops it.
  ExpectRejected(Rs256()->Authenticate(testing::SignJwt("HS256", keys_->public_pem, claims),
                                       absl::Now()),
                 "signed with HS256; this server accepts RS256 only");
  // Unsigned tokens.
  ExpectRejected(Rs256()->Authenticate(testing::SignJwt("none", "", claims), absl::Now()),
                 "valid signature");
  // A tampered payload: the signature no longer matches.
  std::string token = SignRs(claims);
  const size_t dot = token.find('.');
  token[dot + 5] = token[dot + 5] == 'A' ? 'B' : 'A';
  ExpectRejected(Rs256()->Authenticate(token, absl::Now()), "token rejected");
  ExpectRejected(Rs256()->Authenticate("not-a-jwt", absl::Now()), "valid signature");
}

TEST_F(JwtTest, Hs256AcceptsItsSecretOnly) {
  const std::string claims = Claims(600);
  absl::StatusOr<Principal> p =
      Hs256()->Authenticate(testing::SignJwt("HS256", kSecret, claims), absl::Now());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->org, "acme");
  ExpectRejected(Hs256()->Authenticate(
                     testing::SignJwt("HS256", "another-secret-another-secret-xx", claims),
                     absl::Now()),
                 "valid signature");
  // The right secret under another algorithm is still refused: the algorithm is pinned.
  ExpectRejected(Hs256()->Authenticate(testing::SignJwt("HS512", kSecret, claims), absl::Now()),
                 "this server accepts HS256 only");
  ExpectRejected(Hs256()->Authenticate(SignRs(claims), absl::Now()), "token rejected");
}

// Regression (tests/fuzz/auth_fuzzer, corpus auth_fuzzer/regress_exp_out_of_range): an exp
// or nbf beyond int64 seconds was cast to int64, which is undefined behaviour.
TEST_F(JwtTest, RejectsTimeClaimsOutOfRange) {
  const std::string base = absl::StrCat(
      R"({"iss":")", kIssuer, R"(","aud":")", kAudience, R"(","sub":"alice","org":"acme",)");
  ExpectRejected(Hs256()->Authenticate(
                     testing::SignJwt("HS256", kSecret, base + R"("exp":20978492599999e99})"),
                     absl::Now()),
                 "claim 'exp' is out of range");
  ExpectRejected(Hs256()->Authenticate(
                     testing::SignJwt("HS256", kSecret, base + R"("exp":-1e19})"), absl::Now()),
                 "claim 'exp' is out of range");
  ExpectRejected(
      Hs256()->Authenticate(
          testing::SignJwt("HS256", kSecret,
                           absl::StrCat(base, R"("exp":)", absl::ToUnixSeconds(absl::Now()) + 600,
                                        R"(,"nbf":1e300})")),
          absl::Now()),
      "claim 'nbf' is out of range");
}

TEST(JwtCreateTest, RefusesWeakOrIncompleteConfiguration) {
  EXPECT_THAT(JwtAuthenticator::Create({"HS256", "short", kIssuer, kAudience}).status().message(),
              HasSubstr("has 5 bytes; use at least 32"));
  EXPECT_THAT(JwtAuthenticator::Create({"RS256", kSecret, kIssuer, kAudience}).status().message(),
              HasSubstr("PEM public key"));
  EXPECT_THAT(JwtAuthenticator::Create({"ES256", kSecret, kIssuer, kAudience}).status().message(),
              HasSubstr("use RS256 or HS256"));
  EXPECT_THAT(JwtAuthenticator::Create({"HS256", kSecret, "", kAudience}).status().message(),
              HasSubstr("needs --jwt_issuer and --jwt_audience"));
}

// ---------------------------------------------------------------- authorization

Principal WithRole(Role role, const std::string& org = "") {
  Principal p;
  p.subject = "someone";
  p.org = org;
  p.Add(role);
  return p;
}

TEST(AuthorizeTest, RoleByPermissionByOrgTable) {
  const Principal tenant = WithRole(Role::kTenantAdmin, "acme");
  const Principal admin = WithRole(Role::kProviderAdmin);
  const Principal viewer = WithRole(Role::kProviderViewer);
  Principal nobody;
  nobody.subject = "nobody";
  struct Row {
    Permission permission;
    bool tenant_own, tenant_other, admin, viewer;
  };
  const Row rows[] = {
      {Permission::kInstanceWrite, true, false, true, false},
      {Permission::kInstanceStatus, false, false, true, false},
      {Permission::kInstanceRead, true, false, true, true},
      {Permission::kTenantRead, true, false, true, true},
      {Permission::kCatalogRead, true, true, true, true},
      {Permission::kInventoryRead, false, false, true, true},
      {Permission::kInventoryWrite, false, false, true, false},
      {Permission::kAdmin, false, false, true, false},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(PermissionName(row.permission));
    EXPECT_EQ(Authorize(tenant, row.permission, "acme").ok(), row.tenant_own);
    EXPECT_EQ(Authorize(tenant, row.permission, "globex").ok(), row.tenant_other);
    EXPECT_EQ(Authorize(admin, row.permission, "globex").ok(), row.admin);
    EXPECT_EQ(Authorize(viewer, row.permission, "globex").ok(), row.viewer);
    EXPECT_EQ(Authorize(nobody, row.permission, "acme").code(), absl::StatusCode::kPermissionDenied);
  }
}

TEST(AuthorizeTest, MessagesSayWhatIsNeeded) {
  absl::Status other = Authorize(WithRole(Role::kTenantAdmin, "acme"), Permission::kInstanceWrite,
                                 "globex");
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(other.message(), HasSubstr("this token is for org 'acme'"));
  EXPECT_THAT(other.message(), HasSubstr("names org 'globex'"));
  absl::Status none = Authorize(WithRole(Role::kTenantAdmin, "acme"), Permission::kTenantRead, "");
  EXPECT_THAT(none.message(), HasSubstr("names no org; set org to 'acme'"));
  absl::Status role = Authorize(WithRole(Role::kProviderViewer), Permission::kInventoryWrite, "");
  EXPECT_THAT(role.message(), HasSubstr("needs FORGE_PROVIDER_ADMIN"));
  EXPECT_THAT(role.message(), HasSubstr("has FORGE_PROVIDER_VIEWER"));
}

TEST(AccessControlTest, NeedsABearerTokenUnlessAuthIsNone) {
  auto tokens = TokensFileAuthenticator::Parse(TokensFile(), "t");
  ASSERT_TRUE(tokens.ok());
  AccessControl access(*std::move(tokens));
  EXPECT_EQ(access.Check(nullptr, Permission::kCatalogRead, "").status().code(),
            absl::StatusCode::kUnauthenticated);
  const std::string basic = "Basic dXNlcjpwYXNz";
  EXPECT_THAT(access.Check(&basic, Permission::kCatalogRead, "").status().message(),
              HasSubstr("must be 'Bearer <token>'"));
  const std::string bearer = absl::StrCat("bearer ", kTenantToken);  // scheme is case-insensitive
  absl::StatusOr<Principal> ok = access.Check(&bearer, Permission::kInstanceRead, "acme");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->subject, "alice");
  EXPECT_EQ(access.Check(&bearer, Permission::kInstanceRead, "globex").status().code(),
            absl::StatusCode::kPermissionDenied);

  std::unique_ptr<AccessControl> none = AccessControl::AllowAll();
  absl::StatusOr<Principal> anonymous = none->Check(nullptr, Permission::kAdmin, "");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->subject, "anonymous");
}

TEST(IsLoopbackListenTest, OnlyLoopbackAddresses) {
  for (const char* yes : {"127.0.0.1:50051", "127.3.2.1:1", "localhost:50051", "[::1]:50051",
                          "LOCALHOST:0"}) {
    EXPECT_TRUE(IsLoopbackListen(yes)) << yes;
  }
  for (const char* no : {"0.0.0.0:50051", "[::]:50051", "10.0.0.1:50051", ":50051",
                         "example.com:50051", "128.0.0.1:1", "[::1:50051"}) {
    EXPECT_FALSE(IsLoopbackListen(no)) << no;
  }
}

}  // namespace
}  // namespace nvlsched::daemon
