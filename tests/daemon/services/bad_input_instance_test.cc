// Bad input on every InstanceService method (issue 21): one table per method, each row a
// malformed, out-of-range, oversized or unicode request; see bad_input_fixture.h.
//
// UUID case (decided here, enforced by daemon/api/field_checks.cc IsUuid): ids are compared
// exactly everywhere (the allocator's maps, the store), so a UUID must be written in lower
// case, the canonical form RFC 4122 prints. Upper case is INVALID_ARGUMENT naming the field,
// in requests and in fleets alike, instead of validating (case-insensitively) and then
// answering NOT_FOUND for an id that exists in the other case.
#include <grpcpp/generic/generic_stub.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/synchronization/notification.h"
#include "tests/daemon/services/bad_input_fixture.h"

namespace nvlsched::daemon::testing {
namespace {

using grpc::StatusCode;
constexpr StatusCode kInvalid = StatusCode::INVALID_ARGUMENT;
constexpr StatusCode kNotFound = StatusCode::NOT_FOUND;

std::string Upper(const std::string& id) { return absl::AsciiStrToUpper(id); }

// Labels: `n` entries k0..k(n-1).
template <typename Map>
void FillLabels(Map* labels, int n) {
  for (int i = 0; i < n; ++i) (*labels)[absl::StrCat("k", i)] = "v";
}

TEST_F(BadInputTest, BatchCreateInstances) {
  using R = v1::BatchCreateInstancesRequest;
  const std::vector<Row<R>> rows = {
      {"org empty", [](R& r) { r.clear_org(); }, kInvalid, {"org"}, "org is required"},
      {"org with a space", [](R& r) { r.set_org("ac me"); }, kInvalid, {"org"}, "whitespace"},
      {"org 1 MiB", [](R& r) { r.set_org(MiB()); }, kInvalid, {"org"}, "at most 256"},
      {"org with a NUL byte", [](R& r) { r.set_org(WithNul("ac", "me")); }, kInvalid, {"org"},
       "control characters"},
      {"org with a C1 control (NEL)", [](R& r) { r.set_org(absl::StrCat("ac", kNextLine)); },
       kInvalid, {"org"}, "control characters"},
      {"name_prefix empty", [](R& r) { r.clear_name_prefix(); }, kInvalid, {"name_prefix"},
       "name_prefix is required"},
      {"name_prefix one character", [](R& r) { r.set_name_prefix("w"); }, kInvalid,
       {"name_prefix"}, "between 2 and 240"},
      {"name_prefix 1 MiB", [](R& r) { r.set_name_prefix(MiB()); }, kInvalid, {"name_prefix"},
       "got 1048576"},
      {"name_prefix with a NUL byte", [](R& r) { r.set_name_prefix(WithNul("wor", "ker")); },
       kInvalid, {"name_prefix"}, "control characters"},
      {"name_prefix with a newline", [](R& r) { r.set_name_prefix("wor\nker"); }, kInvalid,
       {"name_prefix"}, "control characters"},
      {"name_prefix with a C1 control (NEL)",
       [](R& r) { r.set_name_prefix(absl::StrCat("wor", kNextLine, "ker")); }, kInvalid,
       {"name_prefix"}, "control characters"},
      {"name_prefix with a right-to-left override",
       [](R& r) { r.set_name_prefix(absl::StrCat("wor", kRtlOverride, "ker")); }, kInvalid,
       {"name_prefix"}, "bidirectional"},
      {"name_prefix with a leading space", [](R& r) { r.set_name_prefix(" worker"); }, kInvalid,
       {"name_prefix"}, "whitespace"},
      {"count 0", [](R& r) { r.set_count(0); }, kInvalid, {"count"}, "count is required"},
      {"count 1", [](R& r) { r.set_count(1); }, kInvalid, {"count"}, "use CreateInstance"},
      {"count -1", [](R& r) { r.set_count(-1); }, kInvalid, {"count"}, "between 2 and 18"},
      {"count 19", [](R& r) { r.set_count(19); }, kInvalid, {"count"}, "between 2 and 18"},
      {"count INT32_MAX", [](R& r) { r.set_count(2147483647); }, kInvalid, {"count"},
       "got 2147483647"},
      {"count INT32_MIN", [](R& r) { r.set_count(-2147483647 - 1); }, kInvalid, {"count"},
       "got -2147483648"},
      {"tenant_id empty", [](R& r) { r.clear_tenant_id(); }, kInvalid, {"tenant_id"},
       "tenant_id is required"},
      {"tenant_id not a UUID", [](R& r) { r.set_tenant_id("acme-tenant"); }, kInvalid,
       {"tenant_id"}, "must be a UUID"},
      {"tenant_id upper case", [](R& r) { r.set_tenant_id(Upper(f::kTenantId)); }, kInvalid,
       {"tenant_id"}, "lower case"},
      {"tenant_id 1 MiB", [](R& r) { r.set_tenant_id(MiB('f')); }, kInvalid, {"tenant_id"},
       "(1048576 bytes)"},
      {"tenant_id with a NUL byte",
       [](R& r) { r.set_tenant_id(WithNul("7e000000-0000-4000-8000-00000000000", "")); },
       kInvalid, {"tenant_id"}, "must be a UUID"},
      {"tenant_id well-formed, unknown", [](R& r) { r.set_tenant_id(kUnknownUuid); }, kNotFound,
       {}, kUnknownUuid},
      {"instance_type_id emoji", [](R& r) { r.set_instance_type_id(kEmoji); }, kInvalid,
       {"instance_type_id"}, "must be a UUID"},
      {"instance_type_id well-formed, unknown",
       [](R& r) { r.set_instance_type_id(kUnknownUuid); }, kNotFound, {}, kUnknownUuid},
      {"vpc_id empty", [](R& r) { r.clear_vpc_id(); }, kInvalid, {"vpc_id"}, "vpc_id is required"},
      {"interfaces empty", [](R& r) { r.clear_interfaces(); }, kInvalid, {"interfaces"},
       "interfaces is required"},
      {"17 interfaces",
       [](R& r) {
         r.clear_interfaces();
         for (int i = 0; i < 17; ++i) r.add_interfaces()->set_subnet_id(TestUuid(950 + i));
       },
       kInvalid, {"interfaces"}, "at most 16"},
      {"interface naming neither subnet nor prefix",
       [](R& r) { r.mutable_interfaces(0)->clear_subnet_id(); }, kInvalid, {"interfaces[0]"},
       "got neither"},
      {"interface device_instance negative",
       [](R& r) { r.mutable_interfaces(0)->set_device_instance(-1); }, kInvalid,
       {"interfaces[0].device_instance"}, "0 or more"},
      {"interface virtual_function_id negative",
       [](R& r) { r.mutable_interfaces(0)->set_virtual_function_id(-5); }, kInvalid,
       {"interfaces[0].virtual_function_id"}, "0 or more"},
      {"interface ip_address in a batch",
       [](R& r) { r.mutable_interfaces(0)->set_ip_address("10.0.0.1"); }, kInvalid,
       {"interfaces[0].ip_address"}, "not supported in a batch"},
      {"description 1 MiB", [](R& r) { r.set_description(MiB()); }, kInvalid, {"description"},
       "at most 1024"},
      {"10,000 labels", [](R& r) { FillLabels(r.mutable_labels(), 10000); }, kInvalid,
       {"labels"}, "at most 10 labels, got 10000"},
      {"label key empty", [](R& r) { (*r.mutable_labels())[""] = "v"; }, kInvalid,
       {"labels[\"\"]"}, "between 1 and 255"},
      // The path names the key by its first 64 bytes: the answer must stay small enough for a
      // client to receive (it once echoed the whole key: RESOURCE_EXHAUSTED on the client).
      {"label key 1 MiB", [](R& r) { (*r.mutable_labels())[MiB('k')] = "v"; }, kInvalid,
       {absl::StrCat("labels[\"", std::string(64, 'k'), "...\"]")}, "got 1048576"},
      {"label value 1 MiB", [](R& r) { (*r.mutable_labels())["k"] = MiB('v'); }, kInvalid,
       {"labels[\"k\"]"}, "at most 255"},
      {"label key with a NUL byte", [](R& r) { (*r.mutable_labels())[WithNul("k", "x")] = "v"; },
       kInvalid, {"labels[\"k\\000x\"]"}, "control characters"},
      {"label value with a NUL byte", [](R& r) { (*r.mutable_labels())["k"] = WithNul("v", ""); },
       kInvalid, {"labels[\"k\"]"}, "control characters"},
      {"label key with a right-to-left override",
       [](R& r) { (*r.mutable_labels())[absl::StrCat("tier", kRtlOverride)] = "gold"; }, kInvalid,
       {"labels[\"tier\\342\\200\\256\"]"}, "bidirectional"},
      {"secondary_vpc_ids entry not a UUID", [](R& r) { r.add_secondary_vpc_ids("vpc-2"); },
       kInvalid, {"secondary_vpc_ids", "secondary_vpc_ids[0]"}, "must be a UUID"},
      {"operating_system_id and ipxe_script both absent",
       [](R& r) { r.clear_operating_system_id(); }, kInvalid, {"operating_system_id"},
       "operating_system_id is required"},
      {"user_data without an operating system",
       [](R& r) {
         r.clear_operating_system_id();
         r.set_ipxe_script("#!ipxe");
         r.set_user_data("#cloud-config");
       },
       kInvalid, {"user_data"}, "together with operating_system_id"},
      {"infiniband device empty",
       [](R& r) { r.add_infiniband_interfaces()->set_partition_id(TestUuid(960)); }, kInvalid,
       {"infiniband_interfaces[0].device"}, "device is required"},
      {"dpu deployment twice",
       [](R& r) {
         for (int i = 0; i < 2; ++i) {
           auto* d = r.add_dpu_extension_service_deployments();
           d->set_dpu_extension_service_id(TestUuid(961));
           d->set_version("1");
         }
       },
       kInvalid, {"dpu_extension_service_deployments[1].dpu_extension_service_id"},
       "deployed twice"},
      {"nvlink device_instance beyond the type's 4 GPUs",
       [](R& r) {
         auto* nv = r.add_nv_link_interfaces();
         nv->set_nv_link_logical_partition_id(TestUuid(962));
         nv->set_device_instance(4);
       },
       kInvalid, {"nv_link_interfaces[0].device_instance"}, "between 0 and 3"},
      {"nvlink device_instance negative",
       [](R& r) {
         auto* nv = r.add_nv_link_interfaces();
         nv->set_nv_link_logical_partition_id(TestUuid(962));
         nv->set_device_instance(-1);
       },
       kInvalid, {"nv_link_interfaces[0].device_instance"}, "0 or more"},
      {"ssh_key_group_ids repeated in another case",
       [](R& r) {
         r.add_ssh_key_group_ids("abcdef00-0000-4000-8000-000000000001");
         r.add_ssh_key_group_ids("ABCDEF00-0000-4000-8000-000000000001");
       },
       kInvalid, {"ssh_key_group_ids[1]"}, "lower case"},
      {"spread_policy unknown enum number",
       [](R& r) {
         r.set_topology_optimized(false);
         r.set_spread_policy(static_cast<v1::SpreadPolicy>(99));
       },
       kInvalid, {"spread_policy"}, "got 99"},
      {"spread_policy with a topology-optimized batch",
       [](R& r) { r.set_spread_policy(v1::SPREAD_POLICY_SPREAD); }, kInvalid, {"spread_policy"},
       "only applies with topology_optimized=false"},
      {"billing_mode unknown enum number",
       [](R& r) { r.set_billing_mode(static_cast<v1::BillingMode>(-7)); }, kInvalid,
       {"billing_mode"}, "got -7"},
      {"segment_size negative", [](R& r) { r.set_segment_size(-2); }, kInvalid, {"segment_size"},
       "must not be negative"},
      {"segment_size not dividing count",
       [](R& r) {
         r.set_topology_optimized(false);
         r.set_count(4);
         r.set_segment_size(3);
       },
       kInvalid, {"segment_size"}, "not a multiple"},
      {"request_id 1 MiB", [](R& r) { r.set_request_id(MiB()); }, kInvalid, {"request_id"},
       "at most 128"},
      {"request_id with emoji", [](R& r) { r.set_request_id(kEmoji); }, kInvalid, {"request_id"},
       "printable ASCII"},
      {"queue_timeout nanos out of range",
       [](R& r) { r.mutable_queue_timeout()->set_nanos(1000000000); }, kInvalid,
       {"queue_timeout"}, "not a valid duration"},
      {"queue_timeout seconds and nanos of different signs",
       [](R& r) {
         r.mutable_queue_timeout()->set_seconds(5);
         r.mutable_queue_timeout()->set_nanos(-1);
       },
       kInvalid, {"queue_timeout"}, "not a valid duration"},
      {"everything wrong at once",
       [](R& r) {
         r.clear_org();
         r.set_count(0);
         r.set_tenant_id("x");
       },
       kInvalid, {"org", "count", "tenant_id"}, "invalid BatchCreateInstancesRequest"},
  };
  EXPECT_EQ(RunTable("BatchCreateInstances", Batch(2), rows, &BadInputTest::CallBatchCreate),
            rows.size());
  ExpectHealthy();
}

TEST_F(BadInputTest, CreateInstance) {
  using R = v1::CreateInstanceRequest;
  const std::vector<Row<R>> rows = {
      {"org empty", [](R& r) { r.clear_org(); }, kInvalid, {"org"}, "org is required"},
      {"org with a tab", [](R& r) { r.set_org("ac\tme"); }, kInvalid, {"org"}, "whitespace"},
      {"name empty", [](R& r) { r.clear_name(); }, kInvalid, {"name"}, "name is required"},
      {"name 1 MiB", [](R& r) { r.set_name(MiB()); }, kInvalid, {"name"}, "between 2 and 256"},
      {"name 257 emoji (4 bytes each)",
       [](R& r) {
         std::string name;
         for (int i = 0; i < 257; ++i) name += kEmoji;
         r.set_name(name);
       },
       kInvalid, {"name"}, "got 257"},
      {"name with a NUL byte", [](R& r) { r.set_name(WithNul("vm", "1")); }, kInvalid, {"name"},
       "control characters"},
      {"name with DEL", [](R& r) { r.set_name("vm\x7f"); }, kInvalid, {"name"},
       "control characters"},
      {"name with a C1 control (NEL)", [](R& r) { r.set_name(absl::StrCat("vm", kNextLine, "1")); },
       kInvalid, {"name"}, "control characters"},
      {"name with a right-to-left override",
       [](R& r) { r.set_name(absl::StrCat("vm", kRtlOverride, "gpj.exe")); }, kInvalid, {"name"},
       "bidirectional"},
      {"name with a left-to-right isolate", [](R& r) { r.set_name("vm\u2066x\u2069"); }, kInvalid,
       {"name"}, "bidirectional"},
      {"name with a trailing newline", [](R& r) { r.set_name("vm-1\n"); }, kInvalid, {"name"},
       "whitespace"},
      {"gpu_count 0", [](R& r) { r.set_gpu_count(0); }, kInvalid, {"gpu_count"}, "at least 1"},
      {"gpu_count -1", [](R& r) { r.set_gpu_count(-1); }, kInvalid, {"gpu_count"}, "at least 1"},
      {"gpu_count beyond the type's 4 GPUs", [](R& r) { r.set_gpu_count(5); }, kInvalid,
       {"gpu_count"}, "got 5"},
      {"gpu_count INT32_MAX", [](R& r) { r.set_gpu_count(2147483647); }, kInvalid,
       {"gpu_count"}, "2147483647"},
      {"tenant_id upper case", [](R& r) { r.set_tenant_id(Upper(f::kTenantId)); }, kInvalid,
       {"tenant_id"}, "lower case"},
      {"tenant_id well-formed, unknown", [](R& r) { r.set_tenant_id(kUnknownUuid); }, kNotFound,
       {}, kUnknownUuid},
      {"instance_type_id 1 MiB", [](R& r) { r.set_instance_type_id(MiB('0')); }, kInvalid,
       {"instance_type_id"}, "must be a UUID"},
      {"instance_type_id well-formed, unknown",
       [](R& r) { r.set_instance_type_id(kUnknownUuid); }, kNotFound, {}, kUnknownUuid},
      {"site_id not a UUID", [](R& r) { r.set_site_id("site-1"); }, kInvalid, {"site_id"},
       "must be a UUID"},
      {"site_id upper case", [](R& r) { r.set_site_id("ABCDEF00-0000-4000-8000-000000000001"); },
       kInvalid, {"site_id"}, "lower case"},
      {"max_price_per_hour negative", [](R& r) { r.set_max_price_per_hour(-1); }, kInvalid,
       {"max_price_per_hour"}, "0 or more"},
      {"max_price_per_hour NaN", [](R& r) { r.set_max_price_per_hour(std::nan("")); }, kInvalid,
       {"max_price_per_hour"}, "got nan"},
      {"max_price_per_hour infinite",
       [](R& r) { r.set_max_price_per_hour(std::numeric_limits<double>::infinity()); }, kInvalid,
       {"max_price_per_hour"}, "got inf"},
      {"10,000 labels", [](R& r) { FillLabels(r.mutable_labels(), 10000); }, kInvalid,
       {"labels"}, "at most 10 labels"},
      {"label value with a newline", [](R& r) { (*r.mutable_labels())["k"] = "a\nb"; }, kInvalid,
       {"labels[\"k\"]"}, "control characters"},
      {"interfaces without vpc_id",
       [](R& r) { r.add_interfaces()->set_subnet_id(TestUuid(970)); }, kInvalid, {"vpc_id"},
       "vpc_id is required when interfaces are given"},
      {"ip_address not an address",
       [](R& r) {
         r.set_vpc_id(TestUuid(971));
         auto* itf = r.add_interfaces();
         itf->set_vpc_prefix_id(TestUuid(972));
         itf->set_ip_address("10.0.0.256");
       },
       kInvalid, {"interfaces[0].ip_address"}, "IPv4 or IPv6"},
      {"ip_address even",
       [](R& r) {
         r.set_vpc_id(TestUuid(971));
         auto* itf = r.add_interfaces();
         itf->set_vpc_prefix_id(TestUuid(972));
         itf->set_ip_address("10.0.0.2");
       },
       kInvalid, {"interfaces[0].ip_address"}, "least-significant host bit"},
      {"nvlink device_instance beyond gpu_count",
       [](R& r) {
         r.set_gpu_count(2);
         auto* nv = r.add_nv_link_interfaces();
         nv->set_nv_link_logical_partition_id(TestUuid(973));
         nv->set_device_instance(2);
       },
       kInvalid, {"nv_link_interfaces[0].device_instance"}, "between 0 and 1"},
      {"billing_mode unknown enum number",
       [](R& r) { r.set_billing_mode(static_cast<v1::BillingMode>(3)); }, kInvalid,
       {"billing_mode"}, "got 3"},
      {"queue_timeout negative nanos",
       [](R& r) { r.mutable_queue_timeout()->set_nanos(-1000000000); }, kInvalid,
       {"queue_timeout"}, "not a valid duration"},
      {"request_id with a NUL byte", [](R& r) { r.set_request_id(WithNul("id", "1")); }, kInvalid,
       {"request_id"}, "printable ASCII"},
  };
  v1::CreateInstanceRequest base = Single("vm-1");
  EXPECT_EQ(RunTable("CreateInstance", base, rows, &BadInputTest::CallCreate), rows.size());
  ExpectHealthy();
}

// Unicode that is fine in a name or label: emoji, accents, plain right-to-left text with its
// marks. validate_only answers where it would go and takes nothing, so the state is unchanged.
TEST_F(BadInputTest, UnicodeThatIsNotBadIsAccepted) {
  const std::string before = StateDigest();
  const std::vector<std::string> names = {
      absl::StrCat("rocket-", kEmoji), "café-gpu", absl::StrCat("\u05e9\u05e8\u05ea", kRtlMark),
      "\u540d\u524d"};
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    v1::CreateInstanceRequest req = Single(name);
    req.set_validate_only(true);
    (*req.mutable_labels())[absl::StrCat("emoji", kEmoji)] = "\u05e2\u05d1\u05e8\u05d9\u05ea";
    v1::Instance resp;
    const grpc::Status status = Create(req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    v1::BatchCreateInstancesRequest batch = Batch(2);
    batch.set_name_prefix(name);
    batch.set_validate_only(true);
    v1::BatchCreateInstancesResponse batch_resp;
    const grpc::Status batch_status = BatchCreate(batch, &batch_resp);
    EXPECT_TRUE(batch_status.ok()) << batch_status.error_code() << " "
                                   << batch_status.error_message();
  }
  EXPECT_EQ(StateDigest(), before);
}

TEST_F(BadInputTest, GetInstance) {
  using R = v1::GetInstanceRequest;
  const std::string keeper = keeper_.id();
  const std::vector<Row<R>> rows = {
      {"org empty", [](R& r) { r.clear_org(); }, kInvalid, {"org"}, "org is required"},
      {"org 1 MiB", [](R& r) { r.set_org(MiB()); }, kInvalid, {"org"}, "at most 256"},
      {"id empty", [](R& r) { r.clear_id(); }, kInvalid, {"id"}, "id is required"},
      {"id not a UUID", [](R& r) { r.set_id("keeper"); }, kInvalid, {"id"}, "must be a UUID"},
      {"id 1 MiB", [](R& r) { r.set_id(MiB()); }, kInvalid, {"id"}, "(1048576 bytes)"},
      {"id with a NUL byte", [&](R& r) { r.set_id(WithNul(keeper.substr(0, 35), "")); },
       kInvalid, {"id"}, "must be a UUID"},
      {"id with a trailing space", [&](R& r) { r.set_id(keeper + " "); }, kInvalid, {"id"},
       "must be a UUID"},
      {"id upper case (the instance exists in lower case)",
       [&](R& r) { r.set_id(Upper(keeper)); }, kInvalid, {"id"}, "lower case"},
      {"id with an emoji", [](R& r) { r.set_id(kEmoji); }, kInvalid, {"id"}, "must be a UUID"},
      {"id well-formed, unknown", [](R& r) { r.set_id(kUnknownUuid); }, kNotFound, {},
       kUnknownUuid},
      {"both wrong", [](R& r) {
         r.clear_org();
         r.clear_id();
       },
       kInvalid, {"org", "id"}, "invalid GetInstanceRequest"},
  };
  R base;
  base.set_org(f::kOrg);
  base.set_id(keeper);
  EXPECT_EQ(RunTable("GetInstance", base, rows, &BadInputTest::CallGet), rows.size());
  ExpectHealthy();
}

TEST_F(BadInputTest, ListInstances) {
  using R = v1::ListInstancesRequest;
  const std::vector<Row<R>> rows = {
      {"org empty", [](R& r) { r.clear_org(); }, kInvalid, {"org"}, "org is required"},
      {"org with a NUL byte", [](R& r) { r.set_org(WithNul("acme", "")); }, kInvalid, {"org"},
       "control characters"},
      {"tenant_id not a UUID", [](R& r) { r.set_tenant_id("acme"); }, kInvalid, {"tenant_id"},
       "must be a UUID"},
      {"tenant_id upper case", [](R& r) { r.set_tenant_id(Upper(f::kTenantId)); }, kInvalid,
       {"tenant_id"}, "lower case"},
      {"batch_id 1 MiB", [](R& r) { r.set_batch_id(MiB()); }, kInvalid, {"batch_id"},
       "must be a UUID"},
      {"10,000 label filters", [](R& r) { FillLabels(r.mutable_labels(), 10000); }, kInvalid,
       {"labels"}, "at most 10 labels"},
      {"label filter key with a NUL byte",
       [](R& r) { (*r.mutable_labels())[WithNul("k", "")] = "v"; }, kInvalid,
       {"labels[\"k\\000\"]"}, "control characters"},
      {"page_size -1", [](R& r) { r.set_page_size(-1); }, kInvalid, {"page_size"},
       "between 0 and 1000"},
      {"page_size 1001", [](R& r) { r.set_page_size(1001); }, kInvalid, {"page_size"},
       "got 1001"},
      {"page_size INT32_MIN", [](R& r) { r.set_page_size(-2147483647 - 1); }, kInvalid,
       {"page_size"}, "got -2147483648"},
      {"page_token garbage", [](R& r) { r.set_page_token("not-a-token"); }, kInvalid,
       {"page_token"}, "invalid ListInstancesRequest: page_token is not one this server issued"},
      {"page_token 1 MiB", [](R& r) { r.set_page_token(MiB('A')); }, kInvalid, {"page_token"},
       "not one this server issued"},
      {"page_token with invalid base64 bytes",
       [](R& r) { r.set_page_token(absl::StrCat(kEmoji, "==")); }, kInvalid, {"page_token"},
       "not one this server issued"},
  };
  R base;
  base.set_org(f::kOrg);
  EXPECT_EQ(RunTable("ListInstances", base, rows, &BadInputTest::CallList), rows.size());
  ExpectHealthy();
}

// ListInstances is a raw method (instance_service.h): the daemon parses the request itself, so
// bytes that are no ListInstancesRequest are its to refuse.
TEST_F(BadInputTest, ListInstancesBytesThatAreNoRequest) {
  grpc::GenericStub generic(harness().channel());
  const std::string method = absl::StrCat("/", v1::InstanceService::service_full_name(),
                                          "/ListInstances");
  // Field 1 (org) says 100 bytes follow; 3 do.
  const std::string truncated("\x0a\x64org", 5);
  grpc::Slice slice(truncated);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  generic.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), kInvalid) << status.error_message();
  EXPECT_EQ(status.error_message(), "the request is not a nvlsched.v1.ListInstancesRequest");
  ExpectHealthy();
}

TEST_F(BadInputTest, UpdateInstanceStatus) {
  using R = v1::UpdateInstanceStatusRequest;
  const std::string keeper = keeper_.id();
  const std::vector<Row<R>> rows = {
      {"org empty", [](R& r) { r.clear_org(); }, kInvalid, {"org"}, "org is required"},
      {"id empty", [](R& r) { r.clear_id(); }, kInvalid, {"id"}, "id is required"},
      {"id upper case", [&](R& r) { r.set_id(Upper(keeper)); }, kInvalid, {"id"}, "lower case"},
      {"id well-formed, unknown", [](R& r) { r.set_id(kUnknownUuid); }, kNotFound, {},
       kUnknownUuid},
      {"status UNSPECIFIED", [](R& r) { r.set_status(v1::INSTANCE_STATUS_UNSPECIFIED); },
       kInvalid, {"status"}, "INSTANCE_STATUS_UNSPECIFIED"},
      {"status unknown enum number",
       [](R& r) { r.set_status(static_cast<v1::InstanceStatus>(42)); }, kInvalid, {"status"},
       "got 42"},
      {"status negative enum number",
       [](R& r) { r.set_status(static_cast<v1::InstanceStatus>(-1)); }, kInvalid, {"status"},
       "got -1"},
      {"status QUEUED (set by the scheduler only)",
       [](R& r) { r.set_status(v1::INSTANCE_STATUS_QUEUED); }, kInvalid, {"status"},
       "INSTANCE_STATUS_QUEUED"},
      {"status TERMINATED (set by the scheduler only)",
       [](R& r) { r.set_status(v1::INSTANCE_STATUS_TERMINATED); }, kInvalid, {"status"},
       "INSTANCE_STATUS_TERMINATED"},
      {"status QUEUED for an unknown id (the request alone is wrong)",
       [](R& r) {
         r.set_id(kUnknownUuid);
         r.set_status(v1::INSTANCE_STATUS_QUEUED);
       },
       kInvalid, {"status"}, "set by the scheduler only"},
      {"message 1 MiB", [](R& r) { r.set_message(MiB()); }, kInvalid, {"message"},
       "at most 1024"},
  };
  R base;
  base.set_org(f::kOrg);
  base.set_id(keeper);
  base.set_status(v1::INSTANCE_STATUS_PROVISIONING);
  EXPECT_EQ(RunTable("UpdateInstanceStatus", base, rows, &BadInputTest::CallUpdateStatus),
            rows.size());
  ExpectHealthy();
}

TEST_F(BadInputTest, DeleteAndReplaceInstance) {
  const std::string keeper = keeper_.id();
  {
    using R = v1::DeleteInstanceRequest;
    const std::vector<Row<R>> rows = {
        {"org empty", [](R& r) { r.clear_org(); }, kInvalid, {"org"}, "org is required"},
        {"org with an emoji and a space", [](R& r) { r.set_org(absl::StrCat(kEmoji, " x")); },
         kInvalid, {"org"}, "whitespace"},
        {"id empty", [](R& r) { r.clear_id(); }, kInvalid, {"id"}, "id is required"},
        {"id 1 MiB", [](R& r) { r.set_id(MiB()); }, kInvalid, {"id"}, "must be a UUID"},
        {"id upper case", [&](R& r) { r.set_id(Upper(keeper)); }, kInvalid, {"id"},
         "lower case"},
        {"id with a NUL byte", [&](R& r) { r.set_id(WithNul(keeper, "")); }, kInvalid, {"id"},
         "must be a UUID"},
        {"id well-formed, unknown", [](R& r) { r.set_id(kUnknownUuid); }, kNotFound, {},
         kUnknownUuid},
    };
    R base;
    base.set_org(f::kOrg);
    base.set_id(keeper);
    EXPECT_EQ(RunTable("DeleteInstance", base, rows, &BadInputTest::CallDelete), rows.size());
  }
  {
    using R = v1::ReplaceInstanceRequest;
    const std::vector<Row<R>> rows = {
        {"org empty", [](R& r) { r.clear_org(); }, kInvalid, {"org"}, "org is required"},
        {"id empty", [](R& r) { r.clear_id(); }, kInvalid, {"id"}, "id is required"},
        {"id not a UUID", [](R& r) { r.set_id("a0000000-0000-4000-8000-00000000000g"); },
         kInvalid, {"id"}, "must be a UUID"},
        {"id upper case", [&](R& r) { r.set_id(Upper(keeper)); }, kInvalid, {"id"},
         "lower case"},
        {"id with a right-to-left override",
         [&](R& r) { r.set_id(absl::StrCat(kRtlOverride, keeper)); }, kInvalid, {"id"},
         "must be a UUID"},
        {"id well-formed, unknown", [](R& r) { r.set_id(kUnknownUuid); }, kNotFound, {},
         kUnknownUuid},
    };
    R base;
    base.set_org(f::kOrg);
    base.set_id(keeper);
    EXPECT_EQ(RunTable("ReplaceInstance", base, rows, &BadInputTest::CallReplace), rows.size());
  }
  ExpectHealthy();
}

TEST_F(BadInputTest, BatchDeleteInstances) {
  using R = v1::BatchDeleteInstancesRequest;
  const std::string keeper = keeper_.id();
  const std::vector<Row<R>> rows = {
      {"org empty", [](R& r) { r.clear_org(); }, kInvalid, {"org"}, "org is required"},
      {"ids empty", [](R& r) { r.clear_ids(); }, kInvalid, {"ids"}, "ids is required"},
      {"1,001 ids",
       [](R& r) {
         r.clear_ids();
         for (int i = 0; i < 1001; ++i) r.add_ids(TestUuid(10000 + i));
       },
       kInvalid, {"ids"}, "at most 1000"},
      {"an id not a UUID", [](R& r) { r.add_ids("x"); }, kInvalid, {"ids[1]"}, "must be a UUID"},
      {"an id 1 MiB", [](R& r) { r.add_ids(MiB()); }, kInvalid, {"ids[1]"}, "(1048576 bytes)"},
      {"an id repeated", [&](R& r) { r.add_ids(keeper); }, kInvalid, {"ids[1]"},
       "must not repeat an id"},
      {"an id upper case", [&](R& r) { r.set_ids(0, Upper(keeper)); }, kInvalid, {"ids[0]"},
       "lower case"},
      {"an id with a NUL byte", [](R& r) { r.add_ids(std::string(36, '\0')); }, kInvalid,
       {"ids[1]"}, "must be a UUID"},
      {"one id well-formed, unknown (nothing is deleted)",
       [](R& r) { r.add_ids(kUnknownUuid); }, kNotFound, {}, kUnknownUuid},
  };
  R base;
  base.set_org(f::kOrg);
  base.add_ids(keeper);
  EXPECT_EQ(RunTable("BatchDeleteInstances", base, rows, &BadInputTest::CallBatchDelete),
            rows.size());
  ExpectHealthy();
}

}  // namespace
}  // namespace nvlsched::daemon::testing
