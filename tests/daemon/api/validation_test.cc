// ValidateBatchCreateInstancesRequest: the seed API's two example bodies pass; a table of
// bad requests each yields INVALID_ARGUMENT with exactly the expected BadRequest field paths.
#include "daemon/api/validation.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "daemon/api/field_violations.h"
#include "google/protobuf/util/json_util.h"
#include "tests/daemon/bad_request_matchers.h"
#include "tests/daemon/seed_bodies.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;
using testing::ExpectInvalid;


constexpr char kOtherUuid[] = "0b9f6c7e-1a2b-4c3d-8e4f-5a6b7c8d9e0f";

// The seed body with the org of the URL path added, as a grpcurl user would send it.
v1::BatchCreateInstancesRequest ParseSeed(const std::string& body) {
  const std::string with_org = absl::StrReplaceAll(
      body, {{"{\n  \"namePrefix\"", "{\n  \"org\": \"demo\",\n  \"namePrefix\""}});
  v1::BatchCreateInstancesRequest request;
  const auto status = google::protobuf::util::JsonStringToMessage(with_org, &request);
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(request.org(), "demo");
  return request;
}

ValidationContext Gb200Context() {
  ValidationContext context;
  context.max_batch_count = 18;
  context.instance_type_gpus = 4;
  return context;
}

TEST(BatchCreateValidationTest, SeedInfiniBandExampleIsValid) {
  const v1::BatchCreateInstancesRequest request = ParseSeed(testing::kSeedStrictBody);
  EXPECT_EQ(request.nv_link_interfaces_size(), 2);
  EXPECT_EQ(request.nv_link_interfaces(1).nv_link_logical_partition_id(),
            "2f8676fd-d228-4db5-ac76-1cfc74f48a23");
  EXPECT_TRUE(request.has_topology_optimized() && request.topology_optimized());
  EXPECT_TRUE(ValidateBatchCreateInstancesRequest(request, Gb200Context()).ok());
  // Without knowing the instance type, too.
  EXPECT_TRUE(ValidateBatchCreateInstancesRequest(request, ValidationContext{}).ok());
}

TEST(BatchCreateValidationTest, SeedVpcPrefixExampleIsValid) {
  const v1::BatchCreateInstancesRequest request = ParseSeed(testing::kSeedCrossDomainBody);
  EXPECT_EQ(request.labels().at("tier"), "production");
  EXPECT_TRUE(request.has_topology_optimized() && !request.topology_optimized());
  EXPECT_TRUE(ValidateBatchCreateInstancesRequest(request, Gb200Context()).ok());
}

// Variations that must stay valid (the seed's ambiguities resolved leniently; see validation.h).
struct GoodBatch {
  std::string name;
  std::function<void(v1::BatchCreateInstancesRequest&)> mutate;
  int instance_type_gpus = 4;  // 0: the caller does not know the type
};

TEST(BatchCreateValidationTest, AcceptedVariations) {
  const std::vector<GoodBatch> cases = {
      {"count 2", [](auto& r) { r.set_count(2); }},
      {"count 18", [](auto& r) { r.set_count(18); }},
      {"virtual interface with its virtual function",
       [](auto& r) {
         r.mutable_interfaces(0)->set_is_physical(false);
         r.mutable_interfaces(0)->set_virtual_function_id(0);
       }},
      {"is_physical not stated, no virtual function",
       [](auto& r) { r.mutable_interfaces(0)->clear_is_physical(); }},
      {"iPXE instead of an operating system",
       [](auto& r) {
         r.clear_operating_system_id();
         r.set_ipxe_script("#!ipxe\nchain http://boot/x");
       }},
      {"empty operating_system_id with an iPXE script",
       [](auto& r) {
         r.set_operating_system_id("");
         r.set_ipxe_script("#!ipxe");
       }},
      {"GPU index beyond 4 when the type is unknown",
       [](auto& r) { r.mutable_nv_link_interfaces(1)->set_device_instance(7); }, 0},
      {"spread policy with topology_optimized false",
       [](auto& r) {
         r.set_topology_optimized(false);
         r.set_spread_policy(v1::SPREAD_POLICY_SPREAD);
       }},
      {"request id", [](auto& r) { r.set_request_id("retry-key:2f8676fd 1"); }},
      {"unicode name prefix of 240 characters",
       [](auto& r) {
         std::string prefix;
         for (int i = 0; i < 240; ++i) prefix += "\xc3\xa9";  // é, 2 bytes each
         r.set_name_prefix(prefix);
       }},
  };
  for (const GoodBatch& good : cases) {
    v1::BatchCreateInstancesRequest request = ParseSeed(testing::kSeedStrictBody);
    good.mutate(request);
    ValidationContext context = Gb200Context();
    context.instance_type_gpus = good.instance_type_gpus;
    const absl::Status status = ValidateBatchCreateInstancesRequest(request, context);
    EXPECT_TRUE(status.ok()) << good.name << ": " << status;
  }
}

struct BadBatch {
  std::string name;
  std::function<void(v1::BatchCreateInstancesRequest&)> mutate;
  std::vector<std::string> fields;
  std::string message;
  const char* base = testing::kSeedStrictBody;
};

void AddSubnetInterface(v1::BatchCreateInstancesRequest& r, bool physical) {
  v1::InterfaceCreateRequest* interface = r.add_interfaces();
  interface->set_subnet_id(kOtherUuid);
  // Not physical: is_physical left unstated (an explicit false would need a virtual function).
  if (physical) interface->set_is_physical(true);
}

std::vector<BadBatch> BadBatches() {
  const std::string long_key(256, 'k');
  return {
      {"CountMissing",
       [](auto& r) { r.set_count(0); },
       {"count"},
       "count is required: the number of instances, between 2 and 18"},
      {"CountOne",
       [](auto& r) { r.set_count(1); },
       {"count"},
       "count must be between 2 and 18, got 1 (use CreateInstance for one)"},
      {"CountTwenty",
       [](auto& r) { r.set_count(20); },
       {"count"},
       "count must be between 2 and 18, got 20"},
      {"CountNegative", [](auto& r) { r.set_count(-3); }, {"count"}, "got -3"},
      {"NamePrefixMissing",
       [](auto& r) { r.clear_name_prefix(); },
       {"name_prefix"},
       "name_prefix is required: between 2 and 240 characters"},
      {"NamePrefixShort",
       [](auto& r) { r.set_name_prefix("g"); },
       {"name_prefix"},
       "name_prefix must be between 2 and 240 characters long, got 1"},
      {"NamePrefixLong",
       [](auto& r) { r.set_name_prefix(std::string(241, 'g')); },
       {"name_prefix"},
       "got 241"},
      {"NamePrefixLeadingSpace",
       [](auto& r) { r.set_name_prefix(" gpu"); },
       {"name_prefix"},
       "name_prefix must not begin or end with whitespace, got \" gpu\""},
      {"NamePrefixTrailingTab",
       [](auto& r) { r.set_name_prefix("gpu\t"); },
       {"name_prefix"},
       "must not begin or end with whitespace, got \"gpu\\t\""},
      {"NamePrefixNewline",
       [](auto& r) { r.set_name_prefix("gpu\nworker"); },
       {"name_prefix"},
       "name_prefix must not contain control characters"},
      {"OrgMissing", [](auto& r) { r.clear_org(); }, {"org"}, "org is required"},
      {"OrgWithSpace",
       [](auto& r) { r.set_org("acme inc"); },
       {"org"},
       "org must not contain whitespace"},
      {"TenantMissing",
       [](auto& r) { r.clear_tenant_id(); },
       {"tenant_id"},
       "tenant_id is required: the UUID of the tenant"},
      {"TenantNotUuid",
       [](auto& r) { r.set_tenant_id("tenant-1"); },
       {"tenant_id"},
       "tenant_id must be a UUID of 8-4-4-4-12 hex digits (e.g. "
       "f97df110-f4de-492e-8849-4a6af68026b0), got \"tenant-1\""},
      {"InstanceTypeBraced",
       [](auto& r) { r.set_instance_type_id("{41e36058-8403-4086-a9b8-39cb5bc9cb98}"); },
       {"instance_type_id"},
       "instance_type_id must be a UUID"},
      {"InstanceTypeNotHex",
       [](auto& r) { r.set_instance_type_id("41e36058-8403-4086-a9b8-39cb5bc9cb9g"); },
       {"instance_type_id"},
       "instance_type_id must be a UUID"},
      {"VpcMissing",
       [](auto& r) { r.clear_vpc_id(); },
       {"vpc_id"},
       "vpc_id is required: the UUID of the VPC"},
      {"InterfacesMissing",
       [](auto& r) { r.clear_interfaces(); },
       {"interfaces"},
       "interfaces is required: at least one interface"},
      {"SeventeenInterfaces",
       [](auto& r) {
         for (int i = 0; i < 16; ++i) AddSubnetInterface(r, false);
       },
       {"interfaces"},
       "interfaces may hold at most 16 entries, got 17"},
      {"InterfaceWithBoth",
       [](auto& r) { r.mutable_interfaces(0)->set_vpc_prefix_id(kOtherUuid); },
       {"interfaces[0]"},
       "interfaces[0] must name exactly one of subnet_id and vpc_prefix_id, got both"},
      {"InterfaceWithNeither",
       [](auto& r) { r.mutable_interfaces(0)->clear_subnet_id(); },
       {"interfaces[0]"},
       "got neither"},
      {"InterfaceSubnetNotUuid",
       [](auto& r) { r.mutable_interfaces(0)->set_subnet_id("net1"); },
       {"interfaces[0].subnet_id"},
       "interfaces[0].subnet_id must be a UUID"},
      {"MixedInterfaceKinds",
       [](auto& r) { r.add_interfaces()->set_vpc_prefix_id(kOtherUuid); },
       {"interfaces"},
       "interfaces must be all subnet-based or all VPC-prefix-based, got 1 with subnet_id and "
       "1 with vpc_prefix_id"},
      {"TwoPhysicalInterfaces",
       [](auto& r) { AddSubnetInterface(r, true); },
       {"interfaces"},
       "at most one interface may be is_physical, got 2 (interfaces[0], interfaces[1])"},
      {"IpAddressInBatch",
       [](auto& r) { r.mutable_interfaces(0)->set_ip_address("10.0.0.1"); },
       {"interfaces[0].ip_address"},
       "interfaces[0].ip_address is not supported in a batch"},
      {"InterfaceDeviceInstanceNegative",
       [](auto& r) { r.mutable_interfaces(0)->set_device_instance(-1); },
       {"interfaces[0].device_instance"},
       "must be 0 or more, got -1"},
      {"VirtualFunctionNegative",
       [](auto& r) {
         r.mutable_interfaces(0)->set_is_physical(false);
         r.mutable_interfaces(0)->set_virtual_function_id(-2);
       },
       {"interfaces[0].virtual_function_id"},
       "interfaces[0].virtual_function_id must be 0 or more, got -2"},
      // Seed 000: virtualFunctionId "must be specified if isPhysical is false".
      {"VirtualInterfaceWithoutVirtualFunction",
       [](auto& r) { r.mutable_interfaces(0)->set_is_physical(false); },
       {"interfaces[0].virtual_function_id"},
       "interfaces[0].virtual_function_id is required when interfaces[0].is_physical is false"},
      {"VirtualInfiniBandWithoutVirtualFunction",
       [](auto& r) { r.mutable_infiniband_interfaces(0)->set_is_physical(false); },
       {"infiniband_interfaces[0].virtual_function_id"},
       "infiniband_interfaces[0].virtual_function_id is required when "
       "infiniband_interfaces[0].is_physical is false"},
      {"SecondaryVpcsWithSubnets",
       [](auto& r) { r.add_secondary_vpc_ids(kOtherUuid); },
       {"secondary_vpc_ids"},
       "secondary_vpc_ids may only be given when every entry of interfaces uses vpc_prefix_id"},
      {"SecondaryVpcRepeated",
       [](auto& r) {
         r.add_secondary_vpc_ids(kOtherUuid);
         r.add_secondary_vpc_ids(kOtherUuid);
       },
       {"secondary_vpc_ids[1]"},
       "secondary_vpc_ids must not repeat an id",
       testing::kSeedCrossDomainBody},
      {"SecondaryVpcIsPrimary",
       [](auto& r) { r.add_secondary_vpc_ids(r.vpc_id()); },
       {"secondary_vpc_ids[0]"},
       "secondary_vpc_ids must not include the primary vpc_id",
       testing::kSeedCrossDomainBody},
      {"SecondaryVpcNotUuid",
       [](auto& r) { r.add_secondary_vpc_ids("vpc-2"); },
       {"secondary_vpc_ids[0]"},
       "secondary_vpc_ids[0] must be a UUID",
       testing::kSeedCrossDomainBody},
      {"ElevenLabels",
       [](auto& r) {
         for (int i = 0; i < 11; ++i) (*r.mutable_labels())[absl::StrCat("k", i)] = "v";
       },
       {"labels"},
       "labels may hold at most 10 labels, got 11"},
      {"LabelKeyTooLong",
       [long_key](auto& r) { (*r.mutable_labels())[long_key] = "v"; },
       {MapKey("labels", long_key)},
       "label keys must be between 1 and 255 characters long, got 256"},
      {"LabelKeyEmpty",
       [](auto& r) { (*r.mutable_labels())[""] = "v"; },
       {"labels[\"\"]"},
       "label keys must be between 1 and 255"},
      {"LabelValueTooLong",
       [](auto& r) { (*r.mutable_labels())["tier"] = std::string(256, 'v'); },
       {"labels[\"tier\"]"},
       "label values must be at most 255 characters long, got 256"},
      {"DescriptionTooLong",
       [](auto& r) { r.set_description(std::string(1025, 'd')); },
       {"description"},
       "description must be at most 1024 characters long, got 1025"},
      {"NoOperatingSystemNorIpxe",
       [](auto& r) { r.clear_operating_system_id(); },
       {"operating_system_id"},
       "operating_system_id is required when ipxe_script is empty"},
      {"OperatingSystemNotUuid",
       [](auto& r) { r.set_operating_system_id("ubuntu-24.04"); },
       {"operating_system_id"},
       "operating_system_id must be a UUID"},
      {"UserDataWithoutOperatingSystem",
       [](auto& r) {
         r.clear_operating_system_id();
         r.set_ipxe_script("#!ipxe");
         r.set_user_data("#cloud-config");
       },
       {"user_data"},
       "user_data can only be given together with operating_system_id"},
      {"NetworkSecurityGroupNotUuid",
       [](auto& r) { r.set_network_security_group_id("nsg"); },
       {"network_security_group_id"},
       "network_security_group_id must be a UUID"},
      {"NvLinkGpuBeyondType",
       [](auto& r) { r.mutable_nv_link_interfaces(1)->set_device_instance(4); },
       {"nv_link_interfaces[1].device_instance"},
       "nv_link_interfaces[1].device_instance must be between 0 and 3 (the instance type has 4 "
       "GPUs per machine), got 4"},
      {"NvLinkGpuRepeated",
       [](auto& r) { r.mutable_nv_link_interfaces(1)->set_device_instance(0); },
       {"nv_link_interfaces[1].device_instance"},
       "must be unique within the request: GPU 0 is already given by nv_link_interfaces[0]"},
      {"NvLinkGpuNegative",
       [](auto& r) { r.mutable_nv_link_interfaces(0)->set_device_instance(-1); },
       {"nv_link_interfaces[0].device_instance"},
       "must be 0 or more, got -1"},
      {"NvLinkPartitionMissing",
       [](auto& r) { r.mutable_nv_link_interfaces(0)->clear_nv_link_logical_partition_id(); },
       {"nv_link_interfaces[0].nv_link_logical_partition_id"},
       "nv_link_interfaces[0].nv_link_logical_partition_id is required: the UUID of an NVLink "
       "logical partition"},
      {"InfiniBandPartitionNotUuid",
       [](auto& r) { r.mutable_infiniband_interfaces(0)->set_partition_id("ib0"); },
       {"infiniband_interfaces[0].partition_id"},
       "must be a UUID"},
      {"InfiniBandDeviceMissing",
       [](auto& r) { r.mutable_infiniband_interfaces(0)->set_device(" "); },
       {"infiniband_interfaces[0].device"},
       "infiniband_interfaces[0].device is required: the InfiniBand device name"},
      {"InfiniBandDeviceInstanceNegative",
       [](auto& r) { r.mutable_infiniband_interfaces(0)->set_device_instance(-1); },
       {"infiniband_interfaces[0].device_instance"},
       "must be 0 or more, got -1"},
      {"DpuExtensionProblems",
       [](auto& r) {
         auto* first = r.add_dpu_extension_service_deployments();
         first->set_dpu_extension_service_id(kOtherUuid);
         first->set_version("1.0");
         auto* second = r.add_dpu_extension_service_deployments();
         second->set_dpu_extension_service_id(kOtherUuid);
         auto* third = r.add_dpu_extension_service_deployments();
         third->set_dpu_extension_service_id("dpu");
         third->set_version("2");
       },
       {"dpu_extension_service_deployments[1].dpu_extension_service_id",
        "dpu_extension_service_deployments[1].version",
        "dpu_extension_service_deployments[2].dpu_extension_service_id"},
       "is deployed twice: list each service once"},
      {"SshKeyGroupProblems",
       [](auto& r) {
         r.add_ssh_key_group_ids("497f6eca-6276-4993-bfeb-53cbbbba6f08");
         r.add_ssh_key_group_ids("key");
       },
       {"ssh_key_group_ids[1]", "ssh_key_group_ids[2]"},
       "ssh_key_group_ids must not repeat an id"},
      {"UpperCaseUuid",
       [](auto& r) { r.set_tenant_id("F97DF110-F4DE-492E-8849-4A6AF68026B0"); },
       {"tenant_id"},
       "tenant_id must be written in lower case (ids are compared exactly), got "
       "\"F97DF110-F4DE-492E-8849-4A6AF68026B0\"; send \"f97df110-f4de-492e-8849-4a6af68026b0\""},
      {"SpreadPolicyWithStrictBatch",
       [](auto& r) { r.set_spread_policy(v1::SPREAD_POLICY_MIN_DOMAINS); },
       {"spread_policy"},
       "spread_policy SPREAD_POLICY_MIN_DOMAINS only applies with topology_optimized=false; "
       "with topology_optimized true the batch stays in one NVLink domain"},
      {"SpreadPolicyWithTopologyAbsent",
       [](auto& r) {
         r.clear_topology_optimized();
         r.set_spread_policy(v1::SPREAD_POLICY_FILL);
       },
       {"spread_policy"},
       "with topology_optimized absent (true)"},
      {"SpreadPolicyUnknown",
       [](auto& r) {
         r.set_topology_optimized(false);
         r.set_spread_policy(static_cast<v1::SpreadPolicy>(9));
       },
       {"spread_policy"},
       "spread_policy must be SPREAD_POLICY_FILL, SPREAD_POLICY_MIN_DOMAINS "
       "or SPREAD_POLICY_SPREAD, got 9"},
      {"RequestIdTooLong",
       [](auto& r) { r.set_request_id(std::string(129, 'r')); },
       {"request_id"},
       "request_id must be at most 128 characters long, got 129"},
      {"RequestIdNotAscii",
       [](auto& r) { r.set_request_id("cl\xc3\xa9"); },
       {"request_id"},
       "request_id must be printable ASCII"},
  };
}

class BadBatchTest : public ::testing::TestWithParam<BadBatch> {};

TEST_P(BadBatchTest, IsRejectedAtItsField) {
  const BadBatch& bad = GetParam();
  v1::BatchCreateInstancesRequest request = ParseSeed(bad.base);
  bad.mutate(request);
  ExpectInvalid(ValidateBatchCreateInstancesRequest(request, Gb200Context()), bad.fields,
                bad.message);
}

INSTANTIATE_TEST_SUITE_P(Table, BadBatchTest, ::testing::ValuesIn(BadBatches()),
                         [](const auto& info) { return info.param.name; });

TEST(BatchCreateValidationTest, MaxBatchCountComesFromTheContext) {
  v1::BatchCreateInstancesRequest request = ParseSeed(testing::kSeedStrictBody);
  request.set_count(10);
  ValidationContext context = Gb200Context();
  context.max_batch_count = 8;
  ExpectInvalid(ValidateBatchCreateInstancesRequest(request, context), {"count"},
                "count must be between 2 and 8, got 10");
  context.max_batch_count = 72;
  request.set_count(72);
  EXPECT_TRUE(ValidateBatchCreateInstancesRequest(request, context).ok());
}

TEST(BatchCreateValidationTest, SeveralBadFieldsYieldOneViolationEach) {
  v1::BatchCreateInstancesRequest request = ParseSeed(testing::kSeedStrictBody);
  request.set_count(20);
  request.set_name_prefix("x");
  request.set_tenant_id("nope");
  request.mutable_interfaces(0)->set_ip_address("10.0.0.1");
  request.mutable_nv_link_interfaces(1)->set_device_instance(9);
  const absl::Status status = ValidateBatchCreateInstancesRequest(request, Gb200Context());
  ExpectInvalid(status,
                {"name_prefix", "count", "tenant_id", "interfaces[0].ip_address",
                 "nv_link_interfaces[1].device_instance"},
                "invalid BatchCreateInstancesRequest: name_prefix must be between 2 and 240 "
                "characters long, got 1 (\"x\"); count must be between 2 and 18, got 20; ");
  // Every violation is in the message too, so a log line tells the whole story.
  for (const char* part : {"tenant_id must be a UUID", "ip_address is not supported in a batch",
                           "device_instance must be between 0 and 3"}) {
    EXPECT_NE(std::string(status.message()).find(part), std::string::npos) << part;
  }
}

TEST(BatchCreateValidationTest, TwoProblemsWithOneFieldShareOneViolation) {
  v1::BatchCreateInstancesRequest request = ParseSeed(testing::kSeedStrictBody);
  request.mutable_nv_link_interfaces(0)->set_device_instance(-1);
  request.clear_interfaces();
  request.add_interfaces()->set_vpc_prefix_id(kOtherUuid);
  request.add_interfaces()->set_subnet_id(kOtherUuid);
  request.mutable_interfaces(0)->set_is_physical(true);
  request.mutable_interfaces(1)->set_is_physical(true);
  const absl::Status status = ValidateBatchCreateInstancesRequest(request, Gb200Context());
  ExpectInvalid(status, {"interfaces", "nv_link_interfaces[0].device_instance"},
                "interfaces must be all subnet-based or all VPC-prefix-based, got 1 with "
                "subnet_id and 1 with vpc_prefix_id; at most one interface may be is_physical");
}

}  // namespace
}  // namespace nvlsched::daemon
