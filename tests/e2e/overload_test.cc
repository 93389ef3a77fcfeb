// Overload, against the real binary: 100 connections open 2,000 calls at once. 400 of them are
// large ListInstances (a page of 1,000 instances, 0.94 MiB on the wire) whose answers the
// client does not read for 4 s, 600 more are the same page read at once, and 1,000 are small
// calls (Health/Check, GetInstance). The clients read slowly: with BDP probing off their
// HTTP/2 windows stay at 64 KiB, so what they do not read stays in the daemon. Checked:
//   - every call gets OK or RESOURCE_EXHAUSTED (--max_pending_reply_mib), never anything else,
//     within kCallBound (every call has that deadline);
//   - the daemon's resident memory (VmRSS sampled every 20 ms, and VmHWM at the end, of the
//     process the test started) grows by at most kMemoryBoundMib;
//   - afterwards it serves normally (reads, a create and a delete, health SERVING), its
//     /metrics show the budget empty again and the refusals by method, and, once the answers
//     are gone, its resident memory falls back near where it started (the freed memory is
//     returned to the OS: --malloc_trim_mib).
// The figures are printed. For measurements the shape can be changed with
// NVLSCHED_OVERLOAD_CONNECTIONS, _CALLS_PER_CONNECTION, _UNREAD_PER_CONNECTION,
// _READ_LISTS_PER_CONNECTION, _HOLD_MS, _DAEMON_FLAGS (extra nvlschedd flags, space separated)
// and NVLSCHED_OVERLOAD_DAEMON (another nvlschedd binary, e.g. an older one: then none of the
// overload flags is passed and the bounds are only reported, not checked). Under a sanitizer
// the run has 20 connections (400 calls) and only reports the bounds.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/api/fleet.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nvlsched/v1/instance_service.grpc.pb.h"
#include "tests/testing/daemon_process.h"

// Under a sanitizer the daemon is several times slower and its memory is the sanitizer's: the
// run is smaller, the deadline longer, and the bounds are reported, not checked.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NVLSCHED_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NVLSCHED_SANITIZED 1
#endif
#endif
#ifdef NVLSCHED_SANITIZED
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

namespace nvlsched {
namespace {

constexpr int kDomains = 60;           // 1,080 machines
constexpr int kInstances = 1008;       // 56 batches of 18
constexpr int kListPageSize = 1000;    // the largest page
constexpr int kLabelsPerInstance = 4;  // makes a listed instance about 1 kB on the wire
// The daemon's flags under test: the budget of answers not yet read, and the trim threshold.
constexpr int kPendingReplyMib = 64;
constexpr int kMallocTrimMib = 16;
// How long any call may take from its start to its status: every call has this deadline, so
// one that passes it shows as DEADLINE_EXCEEDED and fails the test.
constexpr absl::Duration kCallBound = absl::Seconds(kSanitized ? 120 : 20);
// The daemon's resident memory may grow by at most this during the run: the budget, plus what
// gRPC and the allocator hold around it (the page being built, transport buffers, requests,
// fragmentation). Measured: +92.5 MiB.
constexpr int64_t kMemoryBoundMib = 2 * kPendingReplyMib;
// Once idle, it must fall back to within this of where it started (measured: 2.5-8.5 MiB).
constexpr int64_t kIdleBoundMib = 32;

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  int parsed = 0;
  return value != nullptr && absl::SimpleAtoi(value, &parsed) ? parsed : fallback;
}

// "VmRSS" or "VmHWM" of `pid` in KiB (0 if unreadable).
int64_t ProcStatusKib(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    int64_t kib = 0;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib;
  }
  return 0;
}

// GET http://127.0.0.1:port/metrics with a plain socket ("" if it cannot connect).
std::string HttpGetMetrics(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

// The /metrics port the daemon logged at start-up (0 if not found).
int MetricsPort(const std::string& log) {
  const std::string marker = "metrics on http://127.0.0.1:";
  const size_t at = log.find(marker);
  return at == std::string::npos ? 0 : std::atoi(log.c_str() + at + marker.size());
}

std::string Mib(int64_t kib) { return absl::StrFormat("%.1f MiB", kib / 1024.0); }

// Samples VmRSS of `pid` every 20 ms until destroyed; max_kib() is the largest sample.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid) : pid_(pid), thread_([this] { Run(); }) {}
  ~RssSampler() {
    stop_.store(true);
    thread_.join();
  }
  int64_t max_kib() const { return max_kib_.load(); }

 private:
  void Run() {
    // Bounded: the test's own deadlines end it long before this many samples (10 minutes).
    for (int i = 0; i < 30000 && !stop_.load(); ++i) {
      const int64_t kib = ProcStatusKib(pid_, "VmRSS");
      if (kib > max_kib_.load()) max_kib_.store(kib);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> max_kib_{0};
  std::thread thread_;
};

enum class Kind { kUnreadList, kList, kHealth, kGet };

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kUnreadList: return "unread ListInstances";
    case Kind::kList: return "ListInstances";
    case Kind::kHealth: return "Health/Check";
    case Kind::kGet: return "GetInstance";
  }
  return "?";
}

struct Call;
// A completion-queue tag: the call, and whether the event is its status (or only the answer's
// initial metadata, which the unread calls read).
struct Tag {
  Call* call;
  bool final;
};

// One asynchronous call.
struct Call {
  Call() : metadata_tag{this, false}, final_tag{this, true} {}
  Tag metadata_tag;
  Tag final_tag;
  Kind kind = Kind::kHealth;
  grpc::ClientContext ctx;
  grpc::Status status;
  absl::Time start;
  absl::Time end;
  bool done = false;
  v1::ListInstancesResponse list;
  v1::Instance instance;
  grpc::health::v1::HealthCheckResponse health;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ListInstancesResponse>> list_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::Instance>> get_reader;
  std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::health::v1::HealthCheckResponse>>
      health_reader;
};

// One TCP connection (a channel with its own subchannel pool) and its stubs.
struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::InstanceService::Stub> instances;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

// A slow reader: with BDP probing off, the client's flow-control windows stay at HTTP/2's
// 64 KiB, so an answer it does not read stays in the daemon rather than in the client.
Connection Connect(const std::string& address, bool slow_reader) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (slow_reader) args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  Connection c;
  c.channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  c.instances = v1::InstanceService::NewStub(c.channel);
  c.health = grpc::health::v1::Health::NewStub(c.channel);
  return c;
}

std::string TenantId() { return daemon::NameBasedUuid("tenant/demo"); }

v1::ListInstancesRequest BigList() {
  v1::ListInstancesRequest req;
  req.set_org("demo");
  req.set_tenant_id(TenantId());
  req.set_page_size(kListPageSize);
  return req;
}

// Takes events from `cq` until `want` calls have their status or `until` passes; returns how
// many got it.
int Drain(grpc::CompletionQueue& cq, int want, absl::Time until) {
  int done = 0;
  while (done < want) {
    void* raw = nullptr;
    bool ok = false;
    if (cq.AsyncNext(&raw, &ok, absl::ToChronoTime(until)) != grpc::CompletionQueue::GOT_EVENT) {
      break;
    }
    Tag* tag = static_cast<Tag*>(raw);
    if (!tag->final) continue;
    tag->call->end = absl::Now();
    tag->call->done = true;
    ++done;
  }
  return done;
}

// Asks for the call's answer and status.
void Finish(Call& call) {
  switch (call.kind) {
    case Kind::kUnreadList:
    case Kind::kList: call.list_reader->Finish(&call.list, &call.status, &call.final_tag); break;
    case Kind::kGet: call.get_reader->Finish(&call.instance, &call.status, &call.final_tag); break;
    case Kind::kHealth:
      call.health_reader->Finish(&call.health, &call.status, &call.final_tag);
      break;
  }
}

// Fills the fleet with kInstances instances, kLabelsPerInstance labels each; returns their ids.
std::vector<std::string> Fill(v1::InstanceService::Stub& stub) {
  std::vector<std::string> ids;
  for (int batch = 0; static_cast<int>(ids.size()) < kInstances; ++batch) {
    v1::BatchCreateInstancesRequest req;
    req.set_org("demo");
    req.set_name_prefix(absl::StrCat("overload-", batch));
    req.set_count(18);
    req.set_tenant_id(TenantId());
    req.set_instance_type_id(daemon::NameBasedUuid("instance_type/gb200-tray"));
    req.set_vpc_id("5e28ad7c-5fb7-46d6-a28a-fc0ba6fdc4a3");
    req.set_operating_system_id("eaeb86ee-c435-444e-9e01-8346f67f194b");
    req.set_description("an instance of the overload test, listed many times at once");
    for (int l = 0; l < kLabelsPerInstance; ++l) {
      (*req.mutable_labels())[absl::StrCat("overload.example.com/label-", l)] =
          absl::StrCat("value-", l, "-of-batch-", batch);
    }
    v1::InterfaceCreateRequest* itf = req.add_interfaces();
    itf->set_subnet_id("1f232bf0-7b90-456e-b9b0-38d9fea4171a");
    itf->set_is_physical(true);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::BatchCreateInstancesResponse resp;
    const grpc::Status s = stub.BatchCreateInstances(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) break;
    for (const v1::Instance& i : resp.instances()) ids.push_back(i.id());
  }
  return ids;
}

// The daemon serves as usual: health SERVING, the whole page, one instance, a create and its
// delete.
void ExpectServesNormally(Connection& conn, const std::string& some_id) {
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(conn.health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::ListInstancesResponse resp;
    const grpc::Status s = conn.instances->ListInstances(&ctx, BigList(), &resp);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    EXPECT_EQ(resp.instances_size(), kListPageSize);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::GetInstanceRequest req;
    req.set_org("demo");
    req.set_id(some_id);
    v1::Instance resp;
    const grpc::Status s = conn.instances->GetInstance(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    EXPECT_EQ(resp.id(), some_id);
  }
  v1::Instance created;
  {
    v1::CreateInstanceRequest req;
    req.set_org("demo");
    req.set_name("after-the-overload");
    req.set_tenant_id(TenantId());
    req.set_instance_type_id(daemon::NameBasedUuid("instance_type/gb200-tray"));
    req.set_vpc_id("5e28ad7c-5fb7-46d6-a28a-fc0ba6fdc4a3");
    req.set_operating_system_id("eaeb86ee-c435-444e-9e01-8346f67f194b");
    v1::InterfaceCreateRequest* itf = req.add_interfaces();
    itf->set_subnet_id("1f232bf0-7b90-456e-b9b0-38d9fea4171a");
    itf->set_is_physical(true);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    const grpc::Status s = conn.instances->CreateInstance(&ctx, req, &created);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  }
  {
    v1::DeleteInstanceRequest req;
    req.set_org("demo");
    req.set_id(created.id());
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::DeleteInstanceResponse resp;
    const grpc::Status s = conn.instances->DeleteInstance(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
  }
}

class OverloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/overload.", getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(OverloadTest, EveryCallAnsweredMemoryBoundedThenServesNormally) {
  const int connections = EnvInt("NVLSCHED_OVERLOAD_CONNECTIONS", kSanitized ? 20 : 100);
  const int per_connection = EnvInt("NVLSCHED_OVERLOAD_CALLS_PER_CONNECTION", 20);
  const int unread_per_connection = EnvInt("NVLSCHED_OVERLOAD_UNREAD_PER_CONNECTION", 4);
  const int lists_per_connection = EnvInt("NVLSCHED_OVERLOAD_READ_LISTS_PER_CONNECTION", 6);
  const absl::Duration hold = absl::Milliseconds(EnvInt("NVLSCHED_OVERLOAD_HOLD_MS", 4000));
  const char* other_binary = std::getenv("NVLSCHED_OVERLOAD_DAEMON");
  const bool check_bounds = other_binary == nullptr && !kSanitized;
  ASSERT_GE(connections, 1);
  ASSERT_LE(connections * per_connection, 20000);
  ASSERT_LE(unread_per_connection + lists_per_connection, per_connection);

  daemon::FleetShape shape;
  shape.domains = kDomains;
  absl::StatusOr<v1::Fleet> fleet = daemon::GenerateFleet(shape);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  const std::string fleet_file = dir_ + "/fleet.json";
  ASSERT_TRUE(daemon::WriteFleetFile(fleet_file, *fleet).ok());

  std::vector<std::string> args = {absl::StrCat("--db=", dir_, "/nvlsched.db"),
                                   absl::StrCat("--seed_fleet=", fleet_file), "--sync=normal"};
  if (other_binary == nullptr) {
    args.push_back(absl::StrCat("--max_pending_reply_mib=", kPendingReplyMib));
    args.push_back(absl::StrCat("--malloc_trim_mib=", kMallocTrimMib));
    // The reply budget is what this test drives to its limit, so every list reaches it: no
    // bound on the read pool's queue, enough read threads, and the daemon's own priority (the
    // pool's priority is read_pool_test's; at nice 19 under TSan, with a build running beside
    // it, the lists waited out their deadlines here).
    args.push_back("--max_queued_reads=1000000");
    args.push_back("--read_threads=8");
    args.push_back("--read_nice=0");
  }
  if (const char* extra = std::getenv("NVLSCHED_OVERLOAD_DAEMON_FLAGS")) {
    for (absl::string_view flag : absl::StrSplit(extra, ' ', absl::SkipEmpty())) {
      args.emplace_back(flag);
    }
  }
  testing::DaemonProcess daemon(other_binary != nullptr ? other_binary : NVLSCHEDD_PATH, dir_);
  ASSERT_TRUE(daemon.Start(args).ok()) << daemon.Log();
  const pid_t pid = daemon.pid();

  Connection setup = Connect(daemon.address(), /*slow_reader=*/false);
  const std::vector<std::string> ids = Fill(*setup.instances);
  ASSERT_EQ(static_cast<int>(ids.size()), kInstances);
  size_t list_bytes = 0;
  {
    grpc::ClientContext ctx;
    v1::ListInstancesResponse resp;
    ASSERT_TRUE(setup.instances->ListInstances(&ctx, BigList(), &resp).ok());
    ASSERT_EQ(resp.instances_size(), kListPageSize);
    list_bytes = resp.ByteSizeLong();
  }
  // Let the set-up's garbage be trimmed, so "before" is the daemon at rest.
  absl::SleepFor(absl::Milliseconds(1500));
  const int64_t rss_before_kib = ProcStatusKib(pid, "VmRSS");

  // Every call starts at once, over `connections` connections.
  std::vector<Connection> conns;
  for (int c = 0; c < connections; ++c) conns.push_back(Connect(daemon.address(), true));
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Call>> calls;
  auto rss = std::make_unique<RssSampler>(pid);
  const absl::Time run_start = absl::Now();
  for (int i = 0; i < per_connection; ++i) {
    for (int c = 0; c < connections; ++c) {
      auto call = std::make_unique<Call>();
      call->kind = i < unread_per_connection                          ? Kind::kUnreadList
                   : i < unread_per_connection + lists_per_connection ? Kind::kList
                   : (i + c) % 2 == 0                                 ? Kind::kHealth
                                                                      : Kind::kGet;
      call->start = absl::Now();
      call->ctx.set_deadline(absl::ToChronoTime(call->start + kCallBound));
      Connection& conn = conns[static_cast<size_t>(c)];
      switch (call->kind) {
        case Kind::kUnreadList:
        case Kind::kList:
          call->list_reader = conn.instances->PrepareAsyncListInstances(&call->ctx, BigList(), &cq);
          break;
        case Kind::kGet: {
          v1::GetInstanceRequest get;
          get.set_org("demo");
          get.set_id(ids[static_cast<size_t>(i * connections + c) % ids.size()]);
          call->get_reader = conn.instances->PrepareAsyncGetInstance(&call->ctx, get, &cq);
          break;
        }
        case Kind::kHealth:
          call->health_reader = conn.health->PrepareAsyncCheck(
              &call->ctx, grpc::health::v1::HealthCheckRequest(), &cq);
          break;
      }
      // The unread lists are sent, and their answers' headers read, but the answers are not
      // asked for yet.
      if (call->kind == Kind::kUnreadList) {
        call->list_reader->StartCall();
        call->list_reader->ReadInitialMetadata(&call->metadata_tag);
      } else {
        if (call->list_reader) call->list_reader->StartCall();
        if (call->get_reader) call->get_reader->StartCall();
        if (call->health_reader) call->health_reader->StartCall();
        Finish(*call);
      }
      calls.push_back(std::move(call));
    }
  }
  const int total = static_cast<int>(calls.size());
  const int unread = connections * unread_per_connection;

  // The read calls are answered while the unread answers wait.
  int done = Drain(cq, total - unread, run_start + kCallBound + absl::Seconds(5));
  const absl::Duration read_calls_time = absl::Now() - run_start;
  done += Drain(cq, total - done, run_start + hold);  // refusals of unread calls come early
  const int64_t rss_held_kib = ProcStatusKib(pid, "VmRSS");
  // Now the unread answers are read.
  const absl::Time read_late = absl::Now();
  for (auto& call : calls) {
    if (call->kind == Kind::kUnreadList && !call->done) Finish(*call);
  }
  done += Drain(cq, total - done, read_late + kCallBound + absl::Seconds(5));
  const absl::Duration unread_calls_time = absl::Now() - read_late;
  const int64_t rss_peak_kib = std::max(rss->max_kib(), ProcStatusKib(pid, "VmHWM"));
  rss.reset();
  ASSERT_EQ(done, total) << "calls without a status well past their deadline";
  cq.Shutdown();
  {
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {  // every call is done: only leftover events remain
    }
  }

  std::map<std::string, int> outcomes;
  absl::Duration longest = absl::ZeroDuration();
  int ok = 0, refused = 0;
  for (const auto& call : calls) {
    const grpc::StatusCode code = call->status.error_code();
    ++outcomes[absl::StrCat(KindName(call->kind), " ", code)];
    if (code == grpc::StatusCode::OK) ++ok;
    if (code == grpc::StatusCode::RESOURCE_EXHAUSTED) ++refused;
    EXPECT_TRUE(code == grpc::StatusCode::OK || code == grpc::StatusCode::RESOURCE_EXHAUSTED)
        << KindName(call->kind) << ": " << code << " " << call->status.error_message();
    if (code == grpc::StatusCode::RESOURCE_EXHAUSTED && other_binary == nullptr) {
      EXPECT_NE(call->status.error_message().find("have not read yet"), std::string::npos)
          << call->status.error_message();
    }
    if (call->kind != Kind::kUnreadList) longest = std::max(longest, call->end - call->start);
    if ((call->kind == Kind::kList || call->kind == Kind::kUnreadList) &&
        code == grpc::StatusCode::OK) {
      EXPECT_EQ(call->list.instances_size(), kListPageSize);
    }
    // Health checks do not go through the engine or the reply budget.
    if (call->kind == Kind::kHealth) {
      EXPECT_EQ(code, grpc::StatusCode::OK);
    }
  }
  // Lists got through, not only refusals.
  EXPECT_GT(outcomes[absl::StrCat(KindName(Kind::kList), " 0")], 0);
  EXPECT_GT(outcomes[absl::StrCat(KindName(Kind::kUnreadList), " 0")], 0);

  conns.clear();
  ExpectServesNormally(setup, ids.front());
  if (other_binary == nullptr) {
    // Every answer was taken or dropped: the budget is empty again (the gauge is refreshed once
    // a second), and the refusals were counted by method and code.
    const int port = MetricsPort(daemon.Log());
    ASSERT_GT(port, 0) << daemon.Log();
    std::string metrics;
    for (int i = 0; i < 40; ++i) {
      metrics = HttpGetMetrics(port);
      if (metrics.find("nvlsched_pending_reply_bytes 0\n") != std::string::npos) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_NE(metrics.find("nvlsched_pending_reply_bytes 0\n"), std::string::npos) << metrics;
    const int refused_lists = outcomes[absl::StrCat(KindName(Kind::kList), " 8")] +
                              outcomes[absl::StrCat(KindName(Kind::kUnreadList), " 8")];
    if (refused_lists > 0) {
      EXPECT_NE(metrics.find(absl::StrCat(
                    "nvlsched_requests_total{code=\"RESOURCE_EXHAUSTED\",method=\"/nvlsched.v1."
                    "InstanceService/ListInstances\"} ",
                    refused_lists, "\n")),
                std::string::npos)
          << metrics;
    }
  }
  // Once idle, the freed memory goes back to the OS (the trimmer looks once a second).
  int64_t rss_idle_kib = ProcStatusKib(pid, "VmRSS");
  for (int i = 0; i < 50 && rss_idle_kib > rss_before_kib + kIdleBoundMib * 1024; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    rss_idle_kib = ProcStatusKib(pid, "VmRSS");
  }

  std::string report = absl::StrCat(
      "overload: ", total, " calls over ", connections, " connections (", unread,
      " ListInstances of ", list_bytes / 1024, " KiB left unread for ", absl::FormatDuration(hold),
      "): ", ok, " OK, ", refused, " RESOURCE_EXHAUSTED, ", total - ok - refused, " other\n",
      "  the read calls all answered within ", absl::FormatDuration(read_calls_time), " (longest ",
      absl::FormatDuration(longest), "); the unread answers, once asked for, within ",
      absl::FormatDuration(unread_calls_time), "\n");
  for (const auto& [what, count] : outcomes) {
    absl::StrAppend(&report, "  ", what, ": ", count, "\n");
  }
  absl::StrAppend(&report, "  daemon VmRSS before ", Mib(rss_before_kib), ", while unread ",
                  Mib(rss_held_kib), ", peak ", Mib(rss_peak_kib), " (+",
                  Mib(rss_peak_kib - rss_before_kib), "), idle after ", Mib(rss_idle_kib), "\n");
  std::printf("%s", report.c_str());

  if (check_bounds) {
    EXPECT_LE(rss_peak_kib - rss_before_kib, kMemoryBoundMib * 1024) << report;
    EXPECT_LE(rss_idle_kib - rss_before_kib, kIdleBoundMib * 1024) << report;
    EXPECT_GT(refused, 0) << "the budget was never reached: the test proves nothing";
  }
  absl::StatusOr<int> code = daemon.StopWith(SIGTERM);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << daemon.Log();
}

}  // namespace
}  // namespace nvlsched
