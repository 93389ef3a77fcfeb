// daemon/auth — who is calling and what they may do.
//
// Authentication and authorization of nvlschedd's API calls.
//
// Every call of our services (not health, not reflection) carries
// `authorization: Bearer <token>`. An Authenticator turns the token into a Principal:
//   - JwtAuthenticator: a JWT signed with ONE pinned algorithm (RS256 with a PEM public key,
//     or HS256 with a shared secret), whose `exp` (required), `nbf`, `iss` and `aud` are
//     checked here (libjwt 1.10 checks the signature only). Claims: `org` (string; absent or
//     empty for provider roles) and `roles` (array of role names).
//   - TokensFileAuthenticator: a file mapping SHA-256(token) to org and roles, for small sites
//     and tests; the file never holds a usable token.
//   - AllowAllAuthenticator: --auth=none, only allowed on a loopback listener; every caller is
//     a provider admin (DaemonOptions / Daemon::Start enforce the loopback rule).
// Then Authorize() decides whether the principal may do a Permission on an org:
//
//   role                  permissions                                          orgs
//   FORGE_TENANT_ADMIN    instances: create, read, delete; tenants: read;      its own only
//                         catalog (instance types, offers)
//   FORGE_PROVIDER_ADMIN  everything                                           all
//   FORGE_PROVIDER_VIEWER every read: instances, tenants, inventory, catalog   all
//
// A tenant admin naming another org gets PERMISSION_DENIED; another tenant's instance inside
// a request for its own org is simply not found (instance_ops.cc), so nothing leaks.
//
// Thread-safety: Authenticators and AccessControl are immutable after construction and safe
// to use from every gRPC thread.
#ifndef NVLSCHED_DAEMON_AUTH_AUTH_H_
#define NVLSCHED_DAEMON_AUTH_AUTH_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace nvlsched::daemon {

enum class Role : uint8_t { kTenantAdmin, kProviderAdmin, kProviderViewer };
inline constexpr absl::string_view kTenantAdminRole = "FORGE_TENANT_ADMIN";
inline constexpr absl::string_view kProviderAdminRole = "FORGE_PROVIDER_ADMIN";
inline constexpr absl::string_view kProviderViewerRole = "FORGE_PROVIDER_VIEWER";

// What a call needs. Each RPC maps to exactly one (see the services' handlers).
enum class Permission : uint8_t {
  kInstanceWrite,   // create / delete instances of an org
  kInstanceStatus,  // UpdateInstanceStatus: the control plane reporting provisioning
  kInstanceRead,    // get / list instances of an org
  kTenantRead,      // list tenants of an org
  kCatalogRead,     // instance types and offers (no org)
  kInventoryRead,   // machines and domains
  kInventoryWrite,  // fleet, machine state, tenants and quotas
  kAdmin,           // snapshots
};
absl::string_view PermissionName(Permission permission);

struct Principal {
  std::string subject;  // JWT `sub`, the tokens file's name column, or "anonymous"
  std::string org;      // empty for provider roles
  uint32_t roles = 0;   // bit (1 << Role)

  bool Has(Role role) const { return (roles & (1u << static_cast<int>(role))) != 0; }
  void Add(Role role) { roles |= 1u << static_cast<int>(role); }
};

// Parses a role name; false for names we do not know (they are ignored, not an error:
// tokens may carry roles of other services).
bool ParseRole(absl::string_view name, Role* role);
// "FORGE_TENANT_ADMIN,FORGE_PROVIDER_VIEWER" (or "no role").
std::string RoleNames(const Principal& principal);

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // `token` is what follows "Bearer ". UNAUTHENTICATED with a reason the caller can act on
  // (never the token itself).
  virtual absl::StatusOr<Principal> Authenticate(absl::string_view token, absl::Time now) const = 0;
  // True for --auth=none: calls need no token.
  virtual bool AllowsAnonymous() const { return false; }
};

// --auth=none.
class AllowAllAuthenticator final : public Authenticator {
 public:
  absl::StatusOr<Principal> Authenticate(absl::string_view token, absl::Time now) const override;
  bool AllowsAnonymous() const override { return true; }
};

// --auth=tokens. File format, one token per line ('#' starts a comment):
//   <sha256 of the token, 64 hex digits>  <subject>  <org or ->  <ROLE[,ROLE...]>
// Print a token's hash with `printf %s "$TOKEN" | sha256sum`.
class TokensFileAuthenticator final : public Authenticator {
 public:
  // INVALID_ARGUMENT naming the file and line for a malformed line or a repeated hash;
  // NOT_FOUND when the file cannot be read.
  static absl::StatusOr<std::unique_ptr<TokensFileAuthenticator>> Load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<TokensFileAuthenticator>> Parse(absl::string_view text,
                                                                       absl::string_view source);
  absl::StatusOr<Principal> Authenticate(absl::string_view token, absl::Time now) const override;
  size_t size() const { return by_hash_.size(); }

 private:
  absl::flat_hash_map<std::string, Principal> by_hash_;  // key: lowercase hex SHA-256
};

// Lowercase hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

struct JwtOptions {
  std::string algorithm;  // "RS256" or "HS256": the only one accepted
  std::string key;        // RS256: PEM public key; HS256: the shared secret (>= 32 bytes)
  std::string issuer;     // required `iss`
  std::string audience;   // required in `aud` (a string or an array of strings)
  absl::Duration leeway = absl::Seconds(30);  // clock skew allowed on exp / nbf
};

// --auth=jwt.
class JwtAuthenticator final : public Authenticator {
 public:
  // INVALID_ARGUMENT for an unknown algorithm, a short HS256 secret, an RS256 key that is not
  // a PEM public key, or an empty issuer / audience.
  static absl::StatusOr<std::unique_ptr<JwtAuthenticator>> Create(JwtOptions options);
  absl::StatusOr<Principal> Authenticate(absl::string_view token, absl::Time now) const override;

 private:
  explicit JwtAuthenticator(JwtOptions options, int alg);
  JwtOptions options_;
  int alg_;  // jwt_alg_t
};

// OK, or PERMISSION_DENIED saying which role the call needs / which org the token is for.
// `org` is the org the request names ("" for calls that name none).
absl::Status Authorize(const Principal& principal, Permission permission, absl::string_view org);

// Authenticates a call's `authorization` metadata value and authorizes it.
class AccessControl {
 public:
  explicit AccessControl(std::unique_ptr<Authenticator> authenticator)
      : authenticator_(std::move(authenticator)) {}
  // A provider-admin AccessControl for --auth=none and in-process tests.
  static std::unique_ptr<AccessControl> AllowAll();

  // `authorization` is the raw metadata value (nullptr when absent). UNAUTHENTICATED for a
  // missing or bad token, PERMISSION_DENIED when the principal may not.
  absl::StatusOr<Principal> Check(const std::string* authorization, Permission permission,
                                  absl::string_view org) const;

 private:
  std::unique_ptr<Authenticator> authenticator_;
};

// True when `listen` (host:port) binds a loopback address only (127.0.0.0/8, ::1, localhost).
bool IsLoopbackListen(absl::string_view listen);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_AUTH_AUTH_H_
