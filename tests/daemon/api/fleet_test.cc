// Fleets: the demo fleet's shape and fixed ids, generated fleets' determinism, fleet files.
#include "daemon/api/fleet.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "daemon/api/field_checks.h"
#include "daemon/api/validation.h"
#include "google/protobuf/util/message_differencer.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;
using google::protobuf::util::MessageDifferencer;

// Every id of `fleet`, checked to be a UUID and unique across all kinds.
void ExpectUniqueUuids(const v1::Fleet& fleet) {
  absl::flat_hash_set<std::string> ids;
  auto add = [&](const std::string& id) {
    EXPECT_TRUE(IsUuid(id)) << id;
    EXPECT_TRUE(ids.insert(id).second) << "repeated id " << id;
  };
  for (const auto& type : fleet.instance_types()) add(type.id());
  for (const auto& domain : fleet.domains()) add(domain.id());
  for (const auto& machine : fleet.machines()) add(machine.id());
  for (const auto& tenant : fleet.tenants()) add(tenant.id());
}

std::string TempPath(absl::string_view name) {
  return absl::StrCat(::testing::TempDir(), "/fleet_test_", ::getpid(), "_", name);
}

void WriteText(const std::string& path, absl::string_view text) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  std::fwrite(text.data(), 1, text.size(), file);
  std::fclose(file);
}

TEST(DemoFleetTest, ShapeAndFixedIds) {
  const v1::Fleet fleet = DemoFleet();
  ASSERT_EQ(fleet.instance_types_size(), 1);
  const v1::InstanceType& type = fleet.instance_types(0);
  EXPECT_EQ(type.id(), "20000000-0000-4000-8000-000000000001");
  EXPECT_EQ(type.id(), kDemoInstanceTypeId);
  EXPECT_EQ(type.name(), "gb200-tray");
  EXPECT_EQ(type.gpu_model(), "GB200");
  EXPECT_EQ(type.gpus_per_machine(), 4);
  EXPECT_EQ(type.gpu_memory_mib(), 177383);
  EXPECT_DOUBLE_EQ(type.price_per_hour(), 42.0);

  ASSERT_EQ(fleet.domains_size(), 8);
  for (int d = 1; d <= 8; ++d) {
    const v1::Domain& domain = fleet.domains(d - 1);
    EXPECT_EQ(domain.id(), kDemoDomainIds[d - 1]);
    EXPECT_EQ(domain.id(), DemoDomainId(d));
    EXPECT_EQ(domain.name(), absl::StrCat("nvl72-rack-0", d));
    EXPECT_EQ(domain.site_id(), "10000000-0000-4000-8000-000000000001");
  }
  EXPECT_EQ(DemoDomainId(8), "40000000-0000-4000-8000-000000000008");

  ASSERT_EQ(fleet.machines_size(), 144);
  for (int i = 0; i < 144; ++i) {
    const v1::Machine& machine = fleet.machines(i);
    const int d = i / 18 + 1;
    const int t = i % 18;
    EXPECT_EQ(machine.id(), DemoMachineId(d, t));
    EXPECT_EQ(machine.domain_id(), DemoDomainId(d));
    EXPECT_EQ(machine.tray_index(), t);
    EXPECT_EQ(machine.instance_type_id(), kDemoInstanceTypeId);
    EXPECT_EQ(machine.gpu_count(), 4);
    EXPECT_EQ(machine.state(), v1::MACHINE_STATE_READY);
  }
  EXPECT_EQ(DemoMachineId(1, 0), "50000000-0000-4000-8000-000000001000");
  EXPECT_EQ(DemoMachineId(3, 17), "50000000-0000-4000-8000-000000003017");

  ASSERT_EQ(fleet.tenants_size(), 1);
  EXPECT_EQ(fleet.tenants(0).id(), "30000000-0000-4000-8000-000000000001");
  EXPECT_EQ(fleet.tenants(0).org(), "demo");
  ASSERT_EQ(fleet.tenants(0).quotas_size(), 1);
  EXPECT_EQ(fleet.tenants(0).quotas(0).instance_type_id(), kDemoInstanceTypeId);
  EXPECT_EQ(fleet.tenants(0).quotas(0).max_machines(), 72);

  ExpectUniqueUuids(fleet);
  EXPECT_TRUE(ValidateFleet(fleet, {}).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(fleet, DemoFleet()));
}

TEST(NameBasedUuidTest, DeterministicVersion4LookingUuids) {
  const std::string id = NameBasedUuid("domain/site-1-domain-000");
  EXPECT_EQ(id, NameBasedUuid("domain/site-1-domain-000"));
  EXPECT_TRUE(IsUuid(id));
  EXPECT_EQ(id[14], '4');
  EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  EXPECT_NE(id, NameBasedUuid("domain/site-1-domain-001"));
  // Pinned (cross-checked with an independent Python implementation): fleet files and
  // benchmark baselines written earlier must keep their ids.
  EXPECT_EQ(NameBasedUuid(""), "14681d01-48c2-4712-bfc2-c6b3e1d08d63");
  EXPECT_EQ(NameBasedUuid("tenant/demo"), "9727f71a-6d25-4ce1-a64b-e6aae430fcd7");
  EXPECT_EQ(NameBasedUuid("domain/site-1-domain-001"), "413ab08c-dad7-4948-951a-fbcb6a4fa623");
}

TEST(GenerateFleetTest, ShapeDefaultsAndDeterminism) {
  FleetShape shape;
  shape.domains = 64;
  absl::StatusOr<v1::Fleet> first = GenerateFleet(shape);
  absl::StatusOr<v1::Fleet> second = GenerateFleet(shape);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(*first, *second));
  EXPECT_EQ(first->domains_size(), 64);
  EXPECT_EQ(first->machines_size(), 64 * 18);
  EXPECT_EQ(first->domains(5).name(), "site-1-domain-005");
  EXPECT_EQ(first->domains(5).id(), NameBasedUuid("domain/site-1-domain-005"));
  EXPECT_EQ(first->machines(18 * 5 + 3).id(), NameBasedUuid("machine/site-1-domain-005/tray-3"));
  EXPECT_EQ(first->instance_types(0).id(), NameBasedUuid("instance_type/gb200-tray"));
  EXPECT_EQ(first->domains(0).site_id(), NameBasedUuid("site/site-1"));
  ASSERT_EQ(first->tenants_size(), 1);
  EXPECT_EQ(first->tenants(0).id(), NameBasedUuid("tenant/demo"));
  EXPECT_EQ(first->tenants(0).quotas(0).max_machines(), 64 * 18) << "default: ample";
  ExpectUniqueUuids(*first);
  EXPECT_TRUE(ValidateFleet(*first, {}).ok());

  shape.site_name = "site-2";
  absl::StatusOr<v1::Fleet> other_site = GenerateFleet(shape);
  ASSERT_TRUE(other_site.ok());
  EXPECT_NE(other_site->domains(0).id(), first->domains(0).id());
}

TEST(GenerateFleetTest, CustomShape) {
  FleetShape shape;
  shape.domains = 2;
  shape.machines_per_domain = 144;
  shape.gpus_per_machine = 8;
  shape.instance_type_name = "b200-node";
  shape.gpu_model = "B200";
  shape.price_per_hour = 0;
  shape.tenant_quota_machines = 10;
  absl::StatusOr<v1::Fleet> fleet = GenerateFleet(shape);
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  EXPECT_EQ(fleet->machines_size(), 288);
  EXPECT_EQ(fleet->machines(287).tray_index(), 143);
  EXPECT_EQ(fleet->machines(0).gpu_count(), 8);
  EXPECT_EQ(fleet->instance_types(0).gpu_model(), "B200");
  EXPECT_EQ(fleet->tenants(0).quotas(0).max_machines(), 10);
  EXPECT_TRUE(ValidateFleet(*fleet, {}).ok());

  shape.tenant_org = "";
  EXPECT_EQ(GenerateFleet(shape)->tenants_size(), 0);
}

TEST(GenerateFleetTest, BadShapesNameTheField) {
  struct Case {
    std::function<void(FleetShape&)> mutate;
    std::string message;
  };
  const Case cases[] = {
      {[](FleetShape& s) { s.domains = 0; }, "domains must be between 1 and 100000, got 0"},
      {[](FleetShape& s) { s.machines_per_domain = 145; },
       "machines_per_domain must be between 1 and 144 (NVL576), got 145"},
      {[](FleetShape& s) { s.gpus_per_machine = 0; }, "gpus_per_machine must be between 1 and 16"},
      {[](FleetShape& s) { s.price_per_hour = -1; }, "price_per_hour must be 0 or more"},
      {[](FleetShape& s) { s.gpu_memory_mib = -1; }, "gpu_memory_mib must be 0 or more"},
      {[](FleetShape& s) { s.instance_type_name = ""; }, "must not be empty"},
  };
  for (const Case& c : cases) {
    FleetShape shape;
    c.mutate(shape);
    absl::StatusOr<v1::Fleet> fleet = GenerateFleet(shape);
    EXPECT_EQ(fleet.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(fleet.status().message()).find(c.message), std::string::npos)
        << fleet.status();
  }
}

TEST(FleetFileTest, RoundTrip) {
  const std::string path = TempPath("round_trip.json");
  ASSERT_TRUE(WriteFleetFile(path, DemoFleet()).ok());
  absl::StatusOr<v1::Fleet> read = ReadFleetFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*read, DemoFleet()));
  // Overwriting replaces the file.
  FleetShape shape;
  shape.domains = 1;
  ASSERT_TRUE(WriteFleetFile(path, *GenerateFleet(shape)).ok());
  EXPECT_EQ(ReadFleetFile(path)->domains_size(), 1);
  std::remove(path.c_str());
}

TEST(FleetFileTest, JsonUsesTheApiNames) {
  const std::string json = FleetToJson(DemoFleet());
  for (const char* part : {"\"instanceTypes\"", "\"gpusPerMachine\": 4", "\"trayIndex\": 17",
                           "\"state\": \"MACHINE_STATE_READY\"", "\"maxMachines\": \"72\""}) {
    EXPECT_NE(json.find(part), std::string::npos) << part;
  }
  // snake_case, as a hand-written file may have it, is accepted too.
  const std::string path = TempPath("snake.json");
  WriteText(path, R"({"domains": [{"id": "40000000-0000-4000-8000-000000000001",
                                    "site_id": "10000000-0000-4000-8000-000000000001"}]})");
  absl::StatusOr<v1::Fleet> read = ReadFleetFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->domains(0).site_id(), kDemoSiteId);
  std::remove(path.c_str());
}

TEST(FleetFileTest, MissingFileIsNotFound) {
  const std::string path = TempPath("does_not_exist.json");
  absl::StatusOr<v1::Fleet> read = ReadFleetFile(path);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(read.status().message()).find(path), std::string::npos);
}

TEST(FleetFileTest, BrokenFileNamesTheFileAndTheProblem) {
  const std::string path = TempPath("broken.json");
  WriteText(path, "{\"domains\": [{\"id\": \"40000000-0000-4000-8000-000000000001\",");
  absl::StatusOr<v1::Fleet> read = ReadFleetFile(path);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(read.status().message());
  EXPECT_NE(
      message.find(absl::StrCat("fleet file ", path, " is not the JSON of an nvlsched.v1.Fleet: ")),
      std::string::npos)
      << message;

  WriteText(path, "{\"machine\": []}");
  read = ReadFleetFile(path);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(read.status().message()).find("machine"), std::string::npos)
      << read.status();
  std::remove(path.c_str());
}

TEST(FleetFileTest, WriteToMissingDirectoryFails) {
  const std::string path = TempPath("no/such/dir/fleet.json");
  const absl::Status status = WriteFleetFile(path, DemoFleet());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(status.message()).find("no/such/dir/fleet.json"), std::string::npos);
}

}  // namespace
}  // namespace nvlsched::daemon
