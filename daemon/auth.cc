#include "daemon/auth.h"

#include <arpa/inet.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <jwt.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace nvlsched::daemon {
namespace {

constexpr size_t kMinHs256SecretBytes = 32;  // RFC 7518 §3.2: at least the hash size

absl::Status Unauthenticated(absl::string_view why) {
  return absl::UnauthenticatedError(absl::StrCat("token rejected: ", why));
}

Principal AnonymousAdmin() {
  Principal p;
  p.subject = "anonymous";
  p.Add(Role::kProviderAdmin);
  return p;
}

// Roles that may do `permission` at all (for the PERMISSION_DENIED message).
std::string RolesFor(Permission permission) {
  switch (permission) {
    case Permission::kInstanceWrite:
      return absl::StrCat(kTenantAdminRole, " (own org) or ", kProviderAdminRole);
    case Permission::kInstanceRead:
    case Permission::kTenantRead:
      return absl::StrCat(kTenantAdminRole, " (own org), ", kProviderViewerRole, " or ",
                          kProviderAdminRole);
    case Permission::kCatalogRead:
      return absl::StrCat(kTenantAdminRole, ", ", kProviderViewerRole, " or ", kProviderAdminRole);
    case Permission::kInventoryRead:
      return absl::StrCat(kProviderViewerRole, " or ", kProviderAdminRole);
    case Permission::kInstanceStatus:
    case Permission::kInventoryWrite:
    case Permission::kAdmin:
      return std::string(kProviderAdminRole);
  }
  return std::string(kProviderAdminRole);
}

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
struct JwtDeleter {
  void operator()(jwt_t* p) const { jwt_free(p); }
};

// A claim that must be a string (absent -> "").
absl::StatusOr<std::string> StringClaim(const google::protobuf::Struct& claims,
                                        const std::string& name) {
  auto it = claims.fields().find(name);
  if (it == claims.fields().end()) return std::string();
  if (it->second.kind_case() != google::protobuf::Value::kStringValue) {
    return Unauthenticated(absl::StrCat("claim '", name, "' must be a string"));
  }
  return it->second.string_value();
}

// A NumericDate claim (seconds since the epoch); nullopt-like: returns false when absent.
absl::StatusOr<bool> TimeClaim(const google::protobuf::Struct& claims, const std::string& name,
                               absl::Time* out) {
  auto it = claims.fields().find(name);
  if (it == claims.fields().end()) return false;
  if (it->second.kind_case() != google::protobuf::Value::kNumberValue) {
    return Unauthenticated(absl::StrCat("claim '", name, "' must be a number (seconds since 1970)"));
  }
  const double seconds = it->second.number_value();
  // Casting a double outside int64's range to int64 is undefined behaviour (found by
  // tests/fuzz/auth_fuzzer); no real token is dated that far out.
  if (!(seconds > -9.2e18 && seconds < 9.2e18)) {
    return Unauthenticated(
        absl::StrCat("claim '", name, "' is out of range: ", seconds, " seconds since 1970"));
  }
  *out = absl::FromUnixSeconds(static_cast<int64_t>(seconds));
  return true;
}

}  // namespace

absl::string_view PermissionName(Permission permission) {
  switch (permission) {
    case Permission::kInstanceWrite: return "create or delete instances";
    case Permission::kInstanceStatus: return "report instance status";
    case Permission::kInstanceRead: return "read instances";
    case Permission::kTenantRead: return "read tenants";
    case Permission::kCatalogRead: return "read instance types and offers";
    case Permission::kInventoryRead: return "read the inventory";
    case Permission::kInventoryWrite: return "change the inventory, tenants or quotas";
    case Permission::kAdmin: return "administer the daemon";
  }
  return "?";
}

bool ParseRole(absl::string_view name, Role* role) {
  if (name == kTenantAdminRole) {
    *role = Role::kTenantAdmin;
  } else if (name == kProviderAdminRole) {
    *role = Role::kProviderAdmin;
  } else if (name == kProviderViewerRole) {
    *role = Role::kProviderViewer;
  } else {
    return false;
  }
  return true;
}

std::string RoleNames(const Principal& principal) {
  std::vector<absl::string_view> names;
  if (principal.Has(Role::kTenantAdmin)) names.push_back(kTenantAdminRole);
  if (principal.Has(Role::kProviderAdmin)) names.push_back(kProviderAdminRole);
  if (principal.Has(Role::kProviderViewer)) names.push_back(kProviderViewerRole);
  return names.empty() ? "no role" : absl::StrJoin(names, ",");
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

// ---------------------------------------------------------------- none

absl::StatusOr<Principal> AllowAllAuthenticator::Authenticate(absl::string_view,
                                                              absl::Time) const {
  return AnonymousAdmin();
}

// ---------------------------------------------------------------- tokens file

absl::StatusOr<std::unique_ptr<TokensFileAuthenticator>> TokensFileAuthenticator::Load(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read --tokens_file=", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

absl::StatusOr<std::unique_ptr<TokensFileAuthenticator>> TokensFileAuthenticator::Parse(
    absl::string_view text, absl::string_view source) {
  auto auth = std::unique_ptr<TokensFileAuthenticator>(new TokensFileAuthenticator());
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_number, ": ", why,
                       "; expected '<sha256 hex> <subject> <org or -> <ROLE[,ROLE...]>'"));
    };
    if (fields.size() != 4) return bad(absl::StrCat("found ", fields.size(), " fields, not 4"));
    std::string digest = absl::AsciiStrToLower(fields[0]);
    if (digest.size() != 64 ||
        digest.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return bad("the first field must be the token's SHA-256 in 64 hex digits");
    }
    Principal principal;
    principal.subject = std::string(fields[1]);
    principal.org = fields[2] == "-" ? "" : std::string(fields[2]);
    for (absl::string_view name : absl::StrSplit(fields[3], ',', absl::SkipEmpty())) {
      Role role;
      if (!ParseRole(name, &role)) {
        return bad(absl::StrCat("unknown role '", name, "' (known: ", kTenantAdminRole, ", ",
                                kProviderAdminRole, ", ", kProviderViewerRole, ")"));
      }
      principal.Add(role);
    }
    if (principal.Has(Role::kTenantAdmin) && principal.org.empty()) {
      return bad(absl::StrCat(kTenantAdminRole, " needs an org"));
    }
    if (!auth->by_hash_.emplace(digest, std::move(principal)).second) {
      return bad("this token hash is listed twice");
    }
  }
  return auth;
}

absl::StatusOr<Principal> TokensFileAuthenticator::Authenticate(absl::string_view token,
                                                                absl::Time) const {
  auto it = by_hash_.find(Sha256Hex(token));
  if (it == by_hash_.end()) return Unauthenticated("this token is not in the tokens file");
  return it->second;
}

// ---------------------------------------------------------------- JWT

JwtAuthenticator::JwtAuthenticator(JwtOptions options, int alg)
    : options_(std::move(options)), alg_(alg) {}

absl::StatusOr<std::unique_ptr<JwtAuthenticator>> JwtAuthenticator::Create(JwtOptions options) {
  jwt_alg_t alg;
  if (options.algorithm == "RS256") {
    alg = JWT_ALG_RS256;
    if (!absl::StrContains(options.key, "-----BEGIN PUBLIC KEY-----")) {
      return absl::InvalidArgumentError(
          "--jwt_key_file must hold a PEM public key ('-----BEGIN PUBLIC KEY-----') for RS256");
    }
  } else if (options.algorithm == "HS256") {
    alg = JWT_ALG_HS256;
    if (options.key.size() < kMinHs256SecretBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the HS256 secret in --jwt_key_file has ", options.key.size(),
          " bytes; use at least ", kMinHs256SecretBytes, " random bytes"));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--jwt_algorithm=", options.algorithm, " is not supported: use RS256 or HS256"));
  }
  if (options.issuer.empty() || options.audience.empty()) {
    return absl::InvalidArgumentError(
        "--auth=jwt needs --jwt_issuer and --jwt_audience: tokens are checked against both");
  }
  return std::unique_ptr<JwtAuthenticator>(new JwtAuthenticator(std::move(options), alg));
}

absl::StatusOr<Principal> JwtAuthenticator::Authenticate(absl::string_view token,
                                                         absl::Time now) const {
  const std::string token_str(token);
  jwt_t* raw = nullptr;
  int rc = jwt_decode(&raw, token_str.c_str(),
                      reinterpret_cast<const unsigned char*>(options_.key.data()),
                      static_cast<int>(options_.key.size()));
  std::unique_ptr<jwt_t, JwtDeleter> jwt(raw);
  if (rc != 0 || jwt == nullptr) {
    return Unauthenticated("not a JWT with a valid signature for this server");
  }
  // libjwt verifies with whatever algorithm the token names: pin ours, or an HS256 token
  // "signed" with our RS256 public key would pass.
  if (jwt_get_alg(jwt.get()) != static_cast<jwt_alg_t>(alg_)) {
    return Unauthenticated(absl::StrCat("the token is signed with ",
                                        jwt_alg_str(jwt_get_alg(jwt.get())), "; this server accepts ",
                                        options_.algorithm, " only"));
  }
  std::unique_ptr<char, FreeDeleter> json(jwt_get_grants_json(jwt.get(), nullptr));
  google::protobuf::Struct claims;
  if (json == nullptr ||
      !google::protobuf::util::JsonStringToMessage(json.get(), &claims).ok()) {
    return Unauthenticated("the token's claims are not a JSON object");
  }

  absl::Time exp;
  absl::StatusOr<bool> has_exp = TimeClaim(claims, "exp", &exp);
  if (!has_exp.ok()) return has_exp.status();
  if (!*has_exp) return Unauthenticated("the token has no 'exp' claim; tokens must expire");
  if (now >= exp + options_.leeway) {
    return Unauthenticated(absl::StrCat("the token expired at ", absl::FormatTime(exp),
                                        "; get a new one"));
  }
  absl::Time nbf;
  absl::StatusOr<bool> has_nbf = TimeClaim(claims, "nbf", &nbf);
  if (!has_nbf.ok()) return has_nbf.status();
  if (*has_nbf && now + options_.leeway < nbf) {
    return Unauthenticated(absl::StrCat("the token is not valid before ", absl::FormatTime(nbf)));
  }
  absl::StatusOr<std::string> iss = StringClaim(claims, "iss");
  if (!iss.ok()) return iss.status();
  if (*iss != options_.issuer) {
    return Unauthenticated(absl::StrCat("the token's issuer '", *iss, "' is not '",
                                        options_.issuer, "'"));
  }
  bool audience_ok = false;
  if (auto it = claims.fields().find("aud"); it != claims.fields().end()) {
    const google::protobuf::Value& aud = it->second;
    if (aud.kind_case() == google::protobuf::Value::kStringValue) {
      audience_ok = aud.string_value() == options_.audience;
    } else if (aud.kind_case() == google::protobuf::Value::kListValue) {
      for (const google::protobuf::Value& v : aud.list_value().values()) {
        if (v.kind_case() == google::protobuf::Value::kStringValue &&
            v.string_value() == options_.audience) {
          audience_ok = true;
        }
      }
    }
  }
  if (!audience_ok) {
    return Unauthenticated(absl::StrCat("the token is not for audience '", options_.audience, "'"));
  }

  Principal principal;
  absl::StatusOr<std::string> sub = StringClaim(claims, "sub");
  if (!sub.ok()) return sub.status();
  principal.subject = *sub;
  absl::StatusOr<std::string> org = StringClaim(claims, "org");
  if (!org.ok()) return org.status();
  principal.org = *org;
  if (auto it = claims.fields().find("roles"); it != claims.fields().end()) {
    if (it->second.kind_case() != google::protobuf::Value::kListValue) {
      return Unauthenticated("claim 'roles' must be an array of role names");
    }
    for (const google::protobuf::Value& v : it->second.list_value().values()) {
      Role role;
      if (v.kind_case() == google::protobuf::Value::kStringValue &&
          ParseRole(v.string_value(), &role)) {
        principal.Add(role);
      }
    }
  }
  return principal;
}

// ---------------------------------------------------------------- authorization

absl::Status Authorize(const Principal& principal, Permission permission, absl::string_view org) {
  const bool admin = principal.Has(Role::kProviderAdmin);
  const bool viewer = principal.Has(Role::kProviderViewer);
  const bool tenant = principal.Has(Role::kTenantAdmin);
  bool role_ok = false;
  bool org_scoped = false;  // a tenant admin is allowed only in its own org
  switch (permission) {
    case Permission::kInstanceWrite:
      role_ok = admin || tenant;
      org_scoped = !admin;
      break;
    case Permission::kInstanceRead:
    case Permission::kTenantRead:
      role_ok = admin || viewer || tenant;
      org_scoped = !admin && !viewer;
      break;
    case Permission::kCatalogRead:
      role_ok = admin || viewer || tenant;
      break;
    case Permission::kInventoryRead:
      role_ok = admin || viewer;
      break;
    case Permission::kInstanceStatus:
    case Permission::kInventoryWrite:
    case Permission::kAdmin:
      role_ok = admin;
      break;
  }
  if (!role_ok) {
    return absl::PermissionDeniedError(absl::StrCat(
        "to ", PermissionName(permission), " a caller needs ", RolesFor(permission),
        "; this token (subject '", principal.subject, "') has ", RoleNames(principal)));
  }
  if (org_scoped && (principal.org.empty() || org != principal.org)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "this token is for org '", principal.org, "' (", kTenantAdminRole,
        ") but the request names ", org.empty() ? "no org" : absl::StrCat("org '", org, "'"),
        "; set org to '", principal.org, "'"));
  }
  return absl::OkStatus();
}

std::unique_ptr<AccessControl> AccessControl::AllowAll() {
  return std::make_unique<AccessControl>(std::make_unique<AllowAllAuthenticator>());
}

absl::StatusOr<Principal> AccessControl::Check(const std::string* authorization,
                                               Permission permission,
                                               absl::string_view org) const {
  absl::StatusOr<Principal> principal;
  if (authenticator_->AllowsAnonymous()) {
    principal = AnonymousAdmin();
  } else if (authorization == nullptr || authorization->empty()) {
    return absl::UnauthenticatedError(
        "no credentials: send the metadata 'authorization: Bearer <token>'");
  } else {
    absl::string_view value = *authorization;
    if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "Bearer ")) {
      return absl::UnauthenticatedError(
          "the authorization metadata must be 'Bearer <token>'");
    }
    absl::string_view token = absl::StripAsciiWhitespace(value.substr(7));
    if (token.empty()) return absl::UnauthenticatedError("the bearer token is empty");
    principal = authenticator_->Authenticate(token, absl::Now());
    if (!principal.ok()) return principal.status();
  }
  if (absl::Status s = Authorize(*principal, permission, org); !s.ok()) return s;
  return principal;
}

bool IsLoopbackListen(absl::string_view listen) {
  absl::string_view host;
  if (absl::ConsumePrefix(&listen, "[")) {
    size_t close = listen.find(']');
    if (close == absl::string_view::npos) return false;
    host = listen.substr(0, close);
  } else {
    size_t colon = listen.rfind(':');
    host = colon == absl::string_view::npos ? listen : listen.substr(0, colon);
  }
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    static const in6_addr kLoopback = IN6ADDR_LOOPBACK_INIT;
    return std::memcmp(&v6, &kLoopback, sizeof(v6)) == 0;
  }
  return false;
}

}  // namespace nvlsched::daemon
