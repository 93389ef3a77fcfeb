// Validation of CreateInstance and of the read, status and delete requests of InstanceService.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "daemon/api/validation.h"
#include "tests/daemon/bad_request_matchers.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;
using testing::ExpectInvalid;

constexpr char kTenant[] = "f97df110-f4de-492e-8849-4a6af68026b0";
constexpr char kType[] = "41e36058-8403-4086-a9b8-39cb5bc9cb98";
constexpr char kVpc[] = "5e28ad7c-5fb7-46d6-a28a-fc0ba6fdc4a3";
constexpr char kPrefix[] = "000bc42b-f946-472e-83d4-ddf7e365e148";
constexpr char kInstance[] = "2f8676fd-d228-4db5-ac76-1cfc74f48a23";

// Two GPUs of a 4-GPU machine, networked through a VPC prefix with a chosen address.
v1::CreateInstanceRequest GoodCreate() {
  v1::CreateInstanceRequest request;
  request.set_org("demo");
  request.set_tenant_id(kTenant);
  request.set_instance_type_id(kType);
  request.set_name("notebook-1");
  request.set_gpu_count(2);
  request.set_vpc_id(kVpc);
  v1::InterfaceCreateRequest* interface = request.add_interfaces();
  interface->set_vpc_prefix_id(kPrefix);
  interface->set_is_physical(true);
  interface->set_ip_address("10.0.0.3");
  v1::NVLinkInterfaceCreateRequest* nvlink = request.add_nv_link_interfaces();
  nvlink->set_nv_link_logical_partition_id(kInstance);
  nvlink->set_device_instance(1);
  return request;
}

ValidationContext FourGpus() {
  ValidationContext context;
  context.instance_type_gpus = 4;
  return context;
}

TEST(CreateInstanceValidationTest, GoodRequestsPass) {
  EXPECT_TRUE(ValidateCreateInstanceRequest(GoodCreate(), FourGpus()).ok());
  // The bare minimum: a whole machine, no networking, no operating system.
  v1::CreateInstanceRequest minimal;
  minimal.set_org("demo");
  minimal.set_tenant_id(kTenant);
  minimal.set_instance_type_id(kType);
  minimal.set_name("n1");
  EXPECT_TRUE(ValidateCreateInstanceRequest(minimal, ValidationContext{}).ok());
  v1::CreateInstanceRequest ipv6 = GoodCreate();
  ipv6.mutable_interfaces(0)->set_ip_address("fd00::1");
  EXPECT_TRUE(ValidateCreateInstanceRequest(ipv6, FourGpus()).ok());
  v1::CreateInstanceRequest free_price = GoodCreate();
  free_price.set_max_price_per_hour(0);
  EXPECT_TRUE(ValidateCreateInstanceRequest(free_price, FourGpus()).ok());
}

struct BadCreate {
  std::string name;
  std::function<void(v1::CreateInstanceRequest&)> mutate;
  std::vector<std::string> fields;
  std::string message;
};

std::vector<BadCreate> BadCreates() {
  return {
      {"OrgMissing", [](auto& r) { r.clear_org(); }, {"org"}, "org is required"},
      {"TenantMissing",
       [](auto& r) { r.clear_tenant_id(); },
       {"tenant_id"},
       "tenant_id is required"},
      {"TypeNotUuid",
       [](auto& r) { r.set_instance_type_id("gb200-tray"); },
       {"instance_type_id"},
       "instance_type_id must be a UUID of 8-4-4-4-12 hex digits"},
      {"NameMissing",
       [](auto& r) { r.clear_name(); },
       {"name"},
       "name is required: between 2 and 256 characters"},
      {"NameTooLong",
       [](auto& r) { r.set_name(std::string(257, 'n')); },
       {"name"},
       "name must be between 2 and 256 characters long, got 257"},
      {"NameTrailingSpace",
       [](auto& r) { r.set_name("nb "); },
       {"name"},
       "name must not begin or end with whitespace"},
      {"NameWithDelete",
       [](auto& r) { r.set_name("nb\x7f"); },
       {"name"},
       "name must not contain control characters"},
      {"GpuCountZero",
       [](auto& r) { r.set_gpu_count(0); },
       {"gpu_count"},
       "gpu_count must be at least 1 (omit it for the whole machine), got 0"},
      {"GpuCountAboveType",
       [](auto& r) { r.set_gpu_count(5); },
       {"gpu_count"},
       "gpu_count must be between 1 and 4 (the instance type has 4 GPUs per machine), got 5"},
      {"DescriptionTooLong",
       [](auto& r) { r.set_description(std::string(1025, 'd')); },
       {"description"},
       "at most 1024"},
      {"SiteNotUuid",
       [](auto& r) { r.set_site_id("demo-site-1"); },
       {"site_id"},
       "site_id must be a UUID"},
      {"NegativePrice",
       [](auto& r) { r.set_max_price_per_hour(-1); },
       {"max_price_per_hour"},
       "max_price_per_hour must be a number of USD per hour, 0 or more, got -1"},
      {"NanPrice",
       [](auto& r) { r.set_max_price_per_hour(std::nan("")); },
       {"max_price_per_hour"},
       "max_price_per_hour must be a number"},
      {"InterfacesWithoutVpc",
       [](auto& r) { r.clear_vpc_id(); },
       {"vpc_id"},
       "vpc_id is required when interfaces are given"},
      {"IpAddressWithSubnet",
       [](auto& r) {
         r.mutable_interfaces(0)->clear_vpc_prefix_id();
         r.mutable_interfaces(0)->set_subnet_id(kPrefix);
       },
       {"interfaces[0].ip_address"},
       "interfaces[0].ip_address can only be given with vpc_prefix_id, not for a subnet-based "
       "interface"},
      {"IpAddressMalformed",
       [](auto& r) { r.mutable_interfaces(0)->set_ip_address("10.0.0.300"); },
       {"interfaces[0].ip_address"},
       "interfaces[0].ip_address must be an IPv4 or IPv6 address such as 10.0.0.1, got "
       "\"10.0.0.300\""},
      {"IpAddressEven",
       [](auto& r) { r.mutable_interfaces(0)->set_ip_address("10.0.0.2"); },
       {"interfaces[0].ip_address"},
       "must have its least-significant host bit set to 1 (an odd address such as 10.0.0.1), "
       "got \"10.0.0.2\""},
      {"Ipv6Even",
       [](auto& r) { r.mutable_interfaces(0)->set_ip_address("fd00::2"); },
       {"interfaces[0].ip_address"},
       "least-significant host bit"},
      {"NvLinkGpuBeyondGpuCount",
       [](auto& r) { r.mutable_nv_link_interfaces(0)->set_device_instance(2); },
       {"nv_link_interfaces[0].device_instance"},
       "nv_link_interfaces[0].device_instance must be between 0 and 1 (the instance has "
       "gpu_count 2 GPUs), got 2"},
      {"NvLinkGpuBeyondTypeForWholeMachine",
       [](auto& r) {
         r.clear_gpu_count();
         r.mutable_nv_link_interfaces(0)->set_device_instance(4);
       },
       {"nv_link_interfaces[0].device_instance"},
       "must be between 0 and 3 (the instance type has 4 GPUs per machine), got 4"},
      {"UserDataWithoutOperatingSystem",
       [](auto& r) { r.set_user_data("#cloud-config"); },
       {"user_data"},
       "user_data can only be given together with operating_system_id"},
      {"OperatingSystemNotUuid",
       [](auto& r) { r.set_operating_system_id("ubuntu"); },
       {"operating_system_id"},
       "operating_system_id must be a UUID"},
      {"SshKeyGroupNotUuid",
       [](auto& r) { r.add_ssh_key_group_ids("key-1"); },
       {"ssh_key_group_ids[0]"},
       "ssh_key_group_ids[0] must be a UUID"},
      {"LabelValueTooLong",
       [](auto& r) { (*r.mutable_labels())["team"] = std::string(300, 'v'); },
       {"labels[\"team\"]"},
       "label values must be at most 255 characters long, got 300"},
      {"RequestIdWithNewline",
       [](auto& r) { r.set_request_id("a\nb"); },
       {"request_id"},
       "request_id must be printable ASCII"},
  };
}

class BadCreateTest : public ::testing::TestWithParam<BadCreate> {};

TEST_P(BadCreateTest, IsRejectedAtItsField) {
  v1::CreateInstanceRequest request = GoodCreate();
  GetParam().mutate(request);
  ExpectInvalid(ValidateCreateInstanceRequest(request, FourGpus()), GetParam().fields,
                GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(Table, BadCreateTest, ::testing::ValuesIn(BadCreates()),
                         [](const auto& info) { return info.param.name; });

TEST(InstanceRequestValidationTest, GetAndDelete) {
  v1::GetInstanceRequest get;
  get.set_org("demo");
  get.set_id(kInstance);
  EXPECT_TRUE(ValidateGetInstanceRequest(get).ok());
  get.clear_org();
  get.set_id("i-1");
  ExpectInvalid(ValidateGetInstanceRequest(get), {"org", "id"},
                "invalid GetInstanceRequest: org is required");

  v1::DeleteInstanceRequest del;
  del.set_org("demo");
  ExpectInvalid(ValidateDeleteInstanceRequest(del), {"id"},
                "id is required: the UUID of the instance");
  del.set_id(kInstance);
  EXPECT_TRUE(ValidateDeleteInstanceRequest(del).ok());
}

TEST(InstanceRequestValidationTest, List) {
  v1::ListInstancesRequest list;
  list.set_org("demo");
  EXPECT_TRUE(ValidateListInstancesRequest(list).ok());
  list.set_page_size(1000);
  list.set_tenant_id(kTenant);
  list.set_batch_id(kInstance);
  EXPECT_TRUE(ValidateListInstancesRequest(list).ok());
  list.set_page_size(1001);
  list.set_batch_id("batch-1");
  ExpectInvalid(ValidateListInstancesRequest(list), {"batch_id", "page_size"},
                "page_size must be between 0 and 1000 (0 means the default of 100), got 1001");
  list.set_batch_id("");
  list.set_page_size(-1);
  ExpectInvalid(ValidateListInstancesRequest(list), {"page_size"}, "got -1");
}

TEST(InstanceRequestValidationTest, UpdateStatus) {
  v1::UpdateInstanceStatusRequest update;
  update.set_org("demo");
  update.set_id(kInstance);
  update.set_status(v1::INSTANCE_STATUS_READY);
  EXPECT_TRUE(ValidateUpdateInstanceStatusRequest(update).ok());
  update.set_status(v1::INSTANCE_STATUS_UNSPECIFIED);
  ExpectInvalid(ValidateUpdateInstanceStatusRequest(update), {"status"},
                "status must be one of INSTANCE_STATUS_PENDING .. INSTANCE_STATUS_ERROR, got "
                "INSTANCE_STATUS_UNSPECIFIED");
  update.set_status(static_cast<v1::InstanceStatus>(42));
  update.set_message(std::string(2000, 'm'));
  ExpectInvalid(ValidateUpdateInstanceStatusRequest(update), {"status", "message"}, "got 42");
}

TEST(InstanceRequestValidationTest, BatchDelete) {
  v1::BatchDeleteInstancesRequest request;
  request.set_org("demo");
  ExpectInvalid(ValidateBatchDeleteInstancesRequest(request), {"ids"},
                "ids is required: the UUIDs of the instances to delete");
  request.add_ids(kInstance);
  request.add_ids(kTenant);
  EXPECT_TRUE(ValidateBatchDeleteInstancesRequest(request).ok());
  request.add_ids(kInstance);
  request.add_ids("nope");
  ExpectInvalid(ValidateBatchDeleteInstancesRequest(request), {"ids[2]", "ids[3]"},
                "ids must not repeat an id: ids[2]");
  request.clear_ids();
  for (int i = 0; i < 1001; ++i) {
    request.add_ids(absl::StrFormat("00000000-0000-4000-8000-%012d", i));
  }
  const absl::Status status = ValidateBatchDeleteInstancesRequest(request);
  EXPECT_EQ(testing::ViolationFields(status).front(), "ids");
  EXPECT_NE(std::string(status.message()).find("ids may hold at most 1000 instances, got 1001"),
            std::string::npos);
}

}  // namespace
}  // namespace nvlsched::daemon
