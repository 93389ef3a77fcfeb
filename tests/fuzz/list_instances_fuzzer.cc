// libFuzzer target: ListInstances page tokens and page sizes (daemon/engine/instance_view.h,
// the view the daemon serves ListInstances from), published from an in-memory State holding a small generated fleet and a dozen instances of two tenants made
// by the real create ops. No gRPC, no store.
// Input (FuzzedDataProvider): org, tenant filter, page size, and a page token that is raw
// bytes, the web-safe base64 of raw bytes, or the token of a real instance id with bytes
// appended. Checks, whenever validation passes:
//   - ListInstances answers OK or INVALID_ARGUMENT at `page_token`;
//   - a page holds at most page_size instances (100 for 0), in increasing id order, all after
//     the token's id, and total_size counts at least those;
//   - next_page_token, when set, names the page's last id and the page is full;
//   - following next_page_token to the end lists exactly the instances after the token that
//     one unpaginated call lists, each once.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "daemon/api/fleet.h"
#include "daemon/engine/instance_ops.h"
#include "daemon/engine/instance_view.h"
#include "daemon/engine/inventory_ops.h"
#include "daemon/engine/state.h"
#include "daemon/api/validation.h"
#include "daemon/services/instance_requests.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace v1 = nvlsched::v1;
using nvlsched::daemon::OpContext;
using nvlsched::daemon::State;

constexpr char kOrg[] = "acme";
constexpr char kOtherOrg[] = "globex";

struct World {
  State state;
  nvlsched::daemon::InstanceView view;  // published from state
  std::vector<std::string> ids;  // every instance id, sorted
  std::vector<std::string> tenants;
};

void MustOk(const absl::Status& status, absl::string_view what) {
  FUZZ_CHECK(status.ok(), absl::StrCat(what, ": ", status.ToString()));
}

// 3 domains x 6 gb200 trays; tenants of acme (2) and globex (1); batches and GPU slices.
World* MakeWorld() {
  auto* world = new World();
  nvlsched::daemon::FleetShape shape;
  shape.domains = 3;
  shape.machines_per_domain = 6;
  shape.tenant_org = kOrg;
  absl::StatusOr<v1::Fleet> fleet = nvlsched::daemon::GenerateFleet(shape);
  MustOk(fleet.status(), "GenerateFleet");
  for (const char* org : {"acme-2", kOtherOrg}) {
    v1::Tenant* tenant = fleet->add_tenants();
    *tenant = fleet->tenants(0);
    tenant->set_id(nvlsched::daemon::NameBasedUuid(absl::StrCat("tenant/", org)));
    tenant->set_org(org == std::string(kOtherOrg) ? kOtherOrg : kOrg);
    tenant->set_name(org);
  }
  v1::ApplyFleetRequest apply;
  *apply.mutable_fleet() = *fleet;
  v1::ApplyFleetResponse applied;
  MustOk(nvlsched::daemon::ApplyFleet(world->state, apply, &applied), "ApplyFleet");
  for (const v1::Tenant& tenant : fleet->tenants()) world->tenants.push_back(tenant.id());

  std::mt19937_64 rng(21);
  const OpContext ctx{absl::FromUnixSeconds(1700000000), absl::BitGenRef(rng)};
  const std::string type_id = fleet->instance_types(0).id();
  int n = 0;
  for (const auto& [tenant, count] : std::vector<std::pair<std::string, int>>{
           {world->tenants[0], 3}, {world->tenants[1], 2}, {world->tenants[0], 4},
           {world->tenants[2], 2}}) {
    v1::BatchCreateInstancesRequest batch;
    batch.set_org(tenant == world->tenants[2] ? kOtherOrg : kOrg);
    batch.set_name_prefix(absl::StrCat("worker", n++));
    batch.set_count(count);
    batch.set_tenant_id(tenant);
    batch.set_instance_type_id(type_id);
    batch.set_vpc_id(nvlsched::daemon::NameBasedUuid("vpc"));
    v1::InterfaceCreateRequest* itf = batch.add_interfaces();
    itf->set_subnet_id(nvlsched::daemon::NameBasedUuid("subnet"));
    itf->set_is_physical(true);
    batch.set_operating_system_id(nvlsched::daemon::NameBasedUuid("os"));
    v1::BatchCreateInstancesResponse created;
    absl::StatusOr<nvlsched::daemon::CreateRequest> core =
        nvlsched::daemon::ToCreateRequest(batch, nvlsched::daemon::ValidationContext{});
    MustOk(core.status(), "ToCreateRequest");
    MustOk(nvlsched::daemon::BatchCreateInstances(world->state, ctx, *core, &created),
           "BatchCreateInstances");
  }
  for (int gpus : {1, 2, 1}) {
    v1::CreateInstanceRequest single;
    single.set_org(kOrg);
    single.set_tenant_id(world->tenants[0]);
    single.set_instance_type_id(type_id);
    single.set_name(absl::StrCat("slice", n++));
    single.set_gpu_count(gpus);
    v1::Instance created;
    absl::StatusOr<nvlsched::daemon::CreateRequest> core =
        nvlsched::daemon::ToCreateRequest(single);
    MustOk(core.status(), "ToCreateRequest");
    MustOk(nvlsched::daemon::CreateInstance(world->state, ctx, *core, &created), "CreateInstance");
  }
  world->state.ClearJournal();
  world->view.PublishAll(world->state);
  for (const auto& [id, entry] : world->state.instances()) world->ids.push_back(id);
  return world;
}

const World& TheWorld() {
  static const World* world = MakeWorld();
  return *world;
}

// ListInstances as a call runs it: the handler's conversion (the page token is decoded there),
// then the view's List.
absl::Status List(const nvlsched::daemon::InstanceView& view,
                  const v1::ListInstancesRequest& request, v1::ListInstancesResponse* response) {
  absl::StatusOr<nvlsched::daemon::InstanceQuery> query =
      nvlsched::daemon::ToInstanceQuery(request);
  if (!query.ok()) return query.status();
  return view.List(*query, response);
}

std::vector<std::string> Ids(const v1::ListInstancesResponse& response) {
  std::vector<std::string> ids;
  for (const v1::Instance& instance : response.instances()) ids.push_back(instance.id());
  return ids;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const World& world = TheWorld();
  FuzzedDataProvider input(data, size);
  v1::ListInstancesRequest request;
  const char* const orgs[] = {kOrg, kOtherOrg, "nobody", ""};
  request.set_org(orgs[input.ConsumeIntegralInRange<int>(0, 3)]);
  const int tenant = input.ConsumeIntegralInRange<int>(-1, static_cast<int>(world.tenants.size()) - 1);
  if (tenant >= 0) request.set_tenant_id(world.tenants[tenant]);
  const uint8_t size_byte = input.ConsumeIntegral<uint8_t>();
  request.set_page_size(size_byte < 224 ? size_byte % 8 : input.ConsumeIntegral<int32_t>());
  switch (input.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
      request.set_page_token(input.ConsumeRemainingBytesAsString());
      break;
    case 1:
      request.set_page_token(absl::WebSafeBase64Escape(input.ConsumeRemainingBytesAsString()));
      break;
    default: {
      const std::string& id =
          world.ids[input.ConsumeIntegralInRange<size_t>(0, world.ids.size() - 1)];
      request.set_page_token(
          absl::WebSafeBase64Escape(id + input.ConsumeRemainingBytesAsString()));
      break;
    }
  }

  if (!nvlsched::daemon::ValidateListInstancesRequest(request).ok()) return 0;
  v1::ListInstancesResponse page;
  const absl::Status status = List(world.view, request, &page);
  std::string after;
  const bool token_decodes = absl::WebSafeBase64Unescape(request.page_token(), &after);
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument, status.ToString());
    FUZZ_CHECK(!request.page_token().empty(), status.ToString());
    return 0;
  }
  if (!request.page_token().empty()) FUZZ_CHECK(token_decodes, request.page_token());

  const int page_size = request.page_size() > 0 ? request.page_size() : 100;
  const std::vector<std::string> ids = Ids(page);
  FUZZ_CHECK(static_cast<int>(ids.size()) <= page_size, request.DebugString());
  FUZZ_CHECK(page.total_size() >= static_cast<int>(ids.size()), request.DebugString());
  for (size_t i = 0; i < ids.size(); ++i) {
    FUZZ_CHECK(after.empty() || ids[i] > after, absl::StrCat(ids[i], " is not after ", after));
    FUZZ_CHECK(i == 0 || ids[i - 1] < ids[i], "page not in id order");
  }
  if (!page.next_page_token().empty()) {
    std::string last;
    FUZZ_CHECK(absl::WebSafeBase64Unescape(page.next_page_token(), &last) && !ids.empty() &&
                   last == ids.back(),
               page.next_page_token());
    FUZZ_CHECK(static_cast<int>(ids.size()) == page_size, "a short page with a next_page_token");
  }

  // Walk the remaining pages; compare with one unpaginated call.
  std::vector<std::string> walked = ids;
  v1::ListInstancesRequest next = request;
  v1::ListInstancesResponse current = page;
  for (size_t pages = 0; !current.next_page_token().empty(); ++pages) {
    FUZZ_CHECK(pages <= world.ids.size(), "pagination does not end");
    next.set_page_token(current.next_page_token());
    current.Clear();
    const absl::Status more = List(world.view, next, &current);
    FUZZ_CHECK(more.ok(), more.ToString());
    FUZZ_CHECK(current.total_size() == page.total_size(), "total_size changed between pages");
    for (const std::string& id : Ids(current)) walked.push_back(id);
  }
  v1::ListInstancesRequest all = request;
  all.clear_page_token();
  all.set_page_size(1000);
  v1::ListInstancesResponse everything;
  FUZZ_CHECK(List(world.view, all, &everything).ok(), "unpaginated");
  FUZZ_CHECK(everything.next_page_token().empty(), "unpaginated call has a next page");
  FUZZ_CHECK(everything.total_size() == page.total_size(), "total_size depends on the token");
  std::vector<std::string> expected;
  for (const std::string& id : Ids(everything)) {
    if (after.empty() || id > after) expected.push_back(id);
  }
  FUZZ_CHECK(walked == expected,
             absl::StrCat("walked ", walked.size(), " instances, expected ", expected.size(),
                          " for ", request.DebugString()));
  return 0;
}
