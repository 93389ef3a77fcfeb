// libFuzzer target: authentication without a server (daemon/auth.h).
// Input: one byte that picks a mode, then the mode's bytes:
//   0  a tokens file's text for TokensFileAuthenticator::Parse;
//   1  a bearer token as a client sends it, for the HS256 JwtAuthenticator and for a tokens
//      file authenticator;
//   2  a JWT's claims (payload) bytes, which the target signs with the server's HS256 secret
//      under a fixed header, so the claim checks (exp, nbf, iss, aud, sub, org, roles) run
//      on every input rather than only on the rare one with a valid signature;
//   3  "<header>\n<claims>": both parts signed the same way (the algorithm pinning).
// Every answer must be OK or UNAUTHENTICATED ("token rejected: ...") for tokens, OK or
// INVALID_ARGUMENT naming source and line for a tokens file; Authorize on whatever principal
// comes out must be OK or PERMISSION_DENIED.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "daemon/auth/auth.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using nvlsched::daemon::Authenticator;
using nvlsched::daemon::JwtAuthenticator;
using nvlsched::daemon::Permission;
using nvlsched::daemon::Principal;
using nvlsched::daemon::TokensFileAuthenticator;

constexpr absl::string_view kSecret = "nvlsched-fuzz-hs256-secret-of-32+bytes!";
constexpr absl::string_view kIssuer = "https://issuer.fuzz.example";
constexpr absl::string_view kAudience = "nvlsched";
// A fixed clock: 2023-11-14T22:13:20Z.
const absl::Time kNow = absl::FromUnixSeconds(1700000000);
// sha256("fuzz-token") and a second principal, as a tokens file lists them.
constexpr absl::string_view kTokensFile =
    "# fixed tokens of the auth fuzzer\n"
    "33cc09ba35314d19e32ed9a5a30fca56eebbfab5faec7247fd0403cd26e155b5 alice acme "
    "FORGE_TENANT_ADMIN\n";

const Authenticator& Jwt() {
  static const JwtAuthenticator* jwt = [] {
    nvlsched::daemon::JwtOptions options;
    options.algorithm = "HS256";
    options.key = std::string(kSecret);
    options.issuer = std::string(kIssuer);
    options.audience = std::string(kAudience);
    absl::StatusOr<std::unique_ptr<JwtAuthenticator>> created =
        JwtAuthenticator::Create(std::move(options));
    FUZZ_CHECK(created.ok(), created.status().ToString());
    return created->release();
  }();
  return *jwt;
}

const Authenticator& Tokens() {
  static const TokensFileAuthenticator* tokens = [] {
    absl::StatusOr<std::unique_ptr<TokensFileAuthenticator>> parsed =
        TokensFileAuthenticator::Parse(kTokensFile, "fixed");
    FUZZ_CHECK(parsed.ok(), parsed.status().ToString());
    return parsed->release();
  }();
  return *tokens;
}

std::string Base64Url(absl::string_view bytes) { return absl::WebSafeBase64Escape(bytes); }

// header.payload.signature, signed with kSecret (HMAC-SHA256) whatever the header says.
std::string SignHs256(absl::string_view header, absl::string_view payload) {
  const std::string signing_input = absl::StrCat(Base64Url(header), ".", Base64Url(payload));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  FUZZ_CHECK(HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
                  reinterpret_cast<const unsigned char*>(signing_input.data()),
                  signing_input.size(), mac, &mac_size) != nullptr,
             "HMAC failed");
  return absl::StrCat(signing_input, ".",
                      Base64Url(absl::string_view(reinterpret_cast<const char*>(mac), mac_size)));
}

void CheckPrincipal(const absl::StatusOr<Principal>& principal, absl::string_view who) {
  if (!principal.ok()) {
    FUZZ_CHECK(principal.status().code() == absl::StatusCode::kUnauthenticated,
               absl::StrCat(who, ": ", principal.status().ToString()));
    FUZZ_CHECK(absl::StartsWith(principal.status().message(), "token rejected: "),
               absl::StrCat(who, ": ", principal.status().ToString()));
    return;
  }
  for (Permission permission :
       {Permission::kInstanceWrite, Permission::kInstanceStatus, Permission::kInstanceRead,
        Permission::kTenantRead, Permission::kCatalogRead, Permission::kInventoryRead,
        Permission::kInventoryWrite, Permission::kAdmin}) {
    for (absl::string_view org : {"", "acme", principal->org.c_str()}) {
      const absl::Status allowed = nvlsched::daemon::Authorize(*principal, permission, org);
      FUZZ_CHECK(allowed.ok() || allowed.code() == absl::StatusCode::kPermissionDenied,
                 allowed.ToString());
      // No role, no access.
      if (principal->roles == 0) FUZZ_CHECK(!allowed.ok(), "a principal without roles was allowed");
    }
  }
}

void CheckSignedToken(const std::string& token) {
  const absl::StatusOr<Principal> principal = Jwt().Authenticate(token, kNow);
  CheckPrincipal(principal, "signed JWT");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      absl::StatusOr<std::unique_ptr<TokensFileAuthenticator>> parsed =
          TokensFileAuthenticator::Parse(rest, "fuzz.tokens");
      if (!parsed.ok()) {
        FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
                   parsed.status().ToString());
        FUZZ_CHECK(absl::StartsWith(parsed.status().message(), "fuzz.tokens:"),
                   parsed.status().ToString());
        break;
      }
      // Every non-comment line with fields became one principal.
      FUZZ_CHECK((*parsed)->size() <= static_cast<size_t>(std::count(rest.begin(), rest.end(), '\n')) + 1,
                 "more principals than lines");
      CheckPrincipal((*parsed)->Authenticate("fuzz-token", kNow), "tokens file");
      CheckPrincipal((*parsed)->Authenticate(rest, kNow), "tokens file");
      break;
    }
    case 1:
      CheckPrincipal(Jwt().Authenticate(rest, kNow), "raw JWT");
      CheckPrincipal(Tokens().Authenticate(rest, kNow), "fixed tokens file");
      break;
    case 2:
      CheckSignedToken(SignHs256(R"({"alg":"HS256","typ":"JWT"})", rest));
      break;
    case 3: {
      const size_t newline = rest.find('\n');
      if (newline == absl::string_view::npos) break;
      CheckSignedToken(SignHs256(rest.substr(0, newline), rest.substr(newline + 1)));
      break;
    }
  }
  return 0;
}
