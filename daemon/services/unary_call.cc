#include "daemon/services/unary_call.h"

#include <spdlog/spdlog.h>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace nvlsched::daemon {
namespace {

constexpr size_t kMaxRequestIdLength = 128;

// A client's request id is kept if it is short and plain (it goes into log lines verbatim).
bool UsableRequestId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string NewRequestId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

const std::string* Metadata(const grpc::CallbackServerContext* ctx, absl::string_view key,
                            std::string* storage) {
  const auto& md = ctx->client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return nullptr;
  storage->assign(it->second.data(), it->second.size());
  return storage;
}

std::string Caller(const Principal& p) {
  return p.org.empty() ? p.subject : absl::StrCat(p.subject, "@", p.org);
}

// " org=acme tenant=7e00..." for what the request names (as the client sent it, made safe).
std::string Target(const CallInfo& call) {
  std::string out;
  if (!call.org.empty()) absl::StrAppend(&out, " org=", ForLog(call.org));
  if (!call.tenant_id.empty()) absl::StrAppend(&out, " tenant=", ForLog(call.tenant_id));
  return out;
}

}  // namespace

std::string ForLog(absl::string_view text) {
  constexpr size_t kMaxBytes = 256;
  const absl::string_view shown = text.substr(0, kMaxBytes);
  std::string out;
  out.reserve(shown.size());
  for (char c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(byte, absl::kZeroPad2));
    }
  }
  if (text.size() > kMaxBytes) absl::StrAppend(&out, "...(", text.size(), " bytes)");
  return out;
}

absl::StatusOr<CallInfo> BeginCall(const AccessControl& access, grpc::CallbackServerContext* ctx,
                                   const char* method, Permission permission,
                                   absl::string_view org) {
  CallInfo call;
  call.method = method;
  call.org = std::string(org);
  call.start = absl::Now();
  std::string client_id;
  const std::string* id = Metadata(ctx, "x-request-id", &client_id);
  call.request_id = id != nullptr && UsableRequestId(*id) ? *id : NewRequestId();
  ctx->AddInitialMetadata("x-request-id", call.request_id);

  std::string authorization;
  absl::StatusOr<Principal> principal =
      access.Check(Metadata(ctx, "authorization", &authorization), permission, org);
  if (!principal.ok()) {
    spdlog::warn("{} request_id={} peer={} refused: {} {}", method, call.request_id, ctx->peer(),
                 absl::StatusCodeToString(principal.status().code()),
                 ForLog(principal.status().message()));
    return principal.status();
  }
  call.principal = *std::move(principal);
  return call;
}

void LogCall(const CallInfo& call, const absl::Status& status, bool is_write) {
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - call.start);
  if (status.ok()) {
    if (!is_write) return;
    spdlog::info("{} request_id={} caller={}{} OK in {:.3f} ms", call.method, call.request_id,
                 Caller(call.principal), Target(call), ms);
  } else {
    spdlog::warn("{} request_id={} caller={}{} {} in {:.3f} ms: {}", call.method,
                 call.request_id, Caller(call.principal), Target(call),
                 absl::StatusCodeToString(status.code()), ms, ForLog(status.message()));
  }
}

}  // namespace nvlsched::daemon
