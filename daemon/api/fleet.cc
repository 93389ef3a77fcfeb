#include "daemon/api/fleet.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/numeric/int128.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/api/validation.h"
#include "google/protobuf/util/json_util.h"

namespace nvlsched::daemon {
namespace {

namespace v1 = ::nvlsched::v1;

constexpr int kMaxGeneratedDomains = 100000;

v1::InstanceType MakeInstanceType(absl::string_view id, absl::string_view name,
                                  absl::string_view gpu_model, int gpus_per_machine,
                                  int64_t gpu_memory_mib, double price_per_hour,
                                  absl::string_view interconnect,
                                  double spot_price_per_hour = kGb200TraySpotPricePerHour) {
  v1::InstanceType type;
  type.set_id(std::string(id));
  type.set_name(std::string(name));
  type.set_gpu_model(std::string(gpu_model));
  type.set_gpus_per_machine(gpus_per_machine);
  type.set_gpu_memory_mib(gpu_memory_mib);
  type.set_price_per_hour(price_per_hour);
  type.set_interconnect(std::string(interconnect));
  type.set_spot_hourly_price(spot_price_per_hour);
  return type;
}

void AddMachine(v1::Fleet& fleet, std::string id, absl::string_view domain_id, int tray,
                absl::string_view instance_type_id, int gpus) {
  v1::Machine* machine = fleet.add_machines();
  machine->set_id(std::move(id));
  machine->set_domain_id(std::string(domain_id));
  machine->set_tray_index(tray);
  machine->set_instance_type_id(std::string(instance_type_id));
  machine->set_gpu_count(gpus);
  machine->set_state(v1::MACHINE_STATE_READY);
}

void AddTenant(v1::Fleet& fleet, absl::string_view id, absl::string_view org,
               absl::string_view instance_type_id, int64_t quota_machines) {
  v1::Tenant* tenant = fleet.add_tenants();
  tenant->set_id(std::string(id));
  tenant->set_org(std::string(org));
  tenant->set_name(std::string(org));
  v1::Quota* quota = tenant->add_quotas();
  quota->set_instance_type_id(std::string(instance_type_id));
  quota->set_max_machines(quota_machines);
}

// MurmurHash3's fmix64: a bijection on 64-bit values with full avalanche.
uint64_t MurmurFinalizer(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb53fe185ec53ULL;
  k ^= k >> 33;
  return k;
}

absl::Status ShapeError(absl::string_view field, absl::string_view range, int64_t got) {
  return absl::InvalidArgumentError(
      absl::StrCat("fleet shape: ", field, " must be ", range, ", got ", got));
}

absl::Status ErrnoError(int error_number, absl::string_view what, const std::string& path) {
  return absl::ErrnoToStatus(error_number, absl::StrCat(what, " ", path));
}

}  // namespace

std::string DemoDomainId(int domain) {
  return absl::StrFormat("40000000-0000-4000-8000-%012d", domain);
}

std::string DemoMachineId(int domain, int tray) {
  return absl::StrFormat("50000000-0000-4000-8000-0000000%02d%03d", domain, tray);
}

v1::Fleet DemoFleet() {
  v1::Fleet fleet;
  *fleet.add_instance_types() = MakeInstanceType(
      kDemoInstanceTypeId, kDemoInstanceTypeName, kDemoGpuModel, kDemoGpusPerMachine,
      kGb200GpuMemoryMib, kGb200TrayPricePerHour, kDemoInterconnect);
  for (int d = 1; d <= kDemoDomainCount; ++d) {
    v1::Domain* domain = fleet.add_domains();
    domain->set_id(DemoDomainId(d));
    domain->set_name(absl::StrFormat("nvl72-rack-%02d", d));
    domain->set_site_id(std::string(kDemoSiteId));
  }
  for (int d = 1; d <= kDemoDomainCount; ++d) {
    for (int t = 0; t < kDemoMachinesPerDomain; ++t) {
      AddMachine(fleet, DemoMachineId(d, t), DemoDomainId(d), t, kDemoInstanceTypeId,
                 kDemoGpusPerMachine);
    }
  }
  AddTenant(fleet, kDemoTenantId, kDemoTenantOrg, kDemoInstanceTypeId, kDemoTenantQuotaMachines);
  return fleet;
}

std::string NameBasedUuid(absl::string_view name) {
  // FNV-1a, 128-bit variant (offset basis and prime from the FNV specification).
  const absl::uint128 kPrime = absl::MakeUint128(0x0000000001000000ULL, 0x000000000000013BULL);
  absl::uint128 hash = absl::MakeUint128(0x6c62272e07bb0142ULL, 0x62b821756295c58dULL);
  const std::string input = absl::StrCat("nvlsched:", name);
  for (char c : input) {
    hash ^= static_cast<unsigned char>(c);
    hash *= kPrime;
  }
  // FNV's high bits hardly change with the last bytes of the input ("tray-1" vs "tray-2"):
  // mix the halves into each other with MurmurHash3's 64-bit finalizer so that similar names
  // give visibly different ids.
  uint64_t low = absl::Uint128Low64(hash) ^ MurmurFinalizer(absl::Uint128High64(hash));
  uint64_t high = absl::Uint128High64(hash) ^ MurmurFinalizer(low);
  high = (high & ~0xF000ULL) | 0x4000ULL;            // version 4
  low = (low & ~(0xC0ULL << 56)) | (0x80ULL << 56);  // variant 10
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", high >> 32, (high >> 16) & 0xFFFF,
                         high & 0xFFFF, low >> 48, low & 0xFFFFFFFFFFFFULL);
}

absl::StatusOr<v1::Fleet> GenerateFleet(const FleetShape& shape) {
  if (shape.domains < 1 || shape.domains > kMaxGeneratedDomains) {
    return ShapeError("domains", absl::StrCat("between 1 and ", kMaxGeneratedDomains),
                      shape.domains);
  }
  if (shape.machines_per_domain < 1 || shape.machines_per_domain > kMaxMachinesPerDomain) {
    return ShapeError("machines_per_domain",
                      absl::StrCat("between 1 and ", kMaxMachinesPerDomain, " (NVL576)"),
                      shape.machines_per_domain);
  }
  if (shape.gpus_per_machine < 1 || shape.gpus_per_machine > kMaxGpusPerMachine) {
    return ShapeError("gpus_per_machine", absl::StrCat("between 1 and ", kMaxGpusPerMachine),
                      shape.gpus_per_machine);
  }
  if (shape.gpu_memory_mib < 0) {
    return ShapeError("gpu_memory_mib", "0 or more", shape.gpu_memory_mib);
  }
  if (!(shape.spot_price_per_hour >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fleet shape: spot_price_per_hour must be 0 or more USD per machine-hour, got ",
        shape.spot_price_per_hour));
  }
  if (!(shape.price_per_hour >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("fleet shape: price_per_hour must be 0 or more USD per machine-hour, got ",
                     shape.price_per_hour));
  }
  if (shape.site_name.empty() || shape.instance_type_name.empty() || shape.gpu_model.empty()) {
    return absl::InvalidArgumentError(
        "fleet shape: site_name, instance_type_name and gpu_model must not be empty");
  }
  const int64_t total_machines = static_cast<int64_t>(shape.domains) * shape.machines_per_domain;
  const std::string site_id = NameBasedUuid(absl::StrCat("site/", shape.site_name));
  const std::string type_id =
      NameBasedUuid(absl::StrCat("instance_type/", shape.instance_type_name));

  v1::Fleet fleet;
  *fleet.add_instance_types() =
      MakeInstanceType(type_id, shape.instance_type_name, shape.gpu_model, shape.gpus_per_machine,
                       shape.gpu_memory_mib, shape.price_per_hour, shape.interconnect,
                       shape.spot_price_per_hour);
  fleet.mutable_domains()->Reserve(shape.domains);
  fleet.mutable_machines()->Reserve(static_cast<int>(total_machines));
  for (int k = 0; k < shape.domains; ++k) {
    const std::string name = absl::StrFormat("%s-domain-%03d", shape.site_name, k);
    const std::string domain_id = NameBasedUuid(absl::StrCat("domain/", name));
    v1::Domain* domain = fleet.add_domains();
    domain->set_id(domain_id);
    domain->set_name(name);
    domain->set_site_id(site_id);
    for (int t = 0; t < shape.machines_per_domain; ++t) {
      AddMachine(fleet, NameBasedUuid(absl::StrCat("machine/", name, "/tray-", t)), domain_id, t,
                 type_id, shape.gpus_per_machine);
    }
  }
  if (!shape.tenant_org.empty()) {
    AddTenant(fleet, NameBasedUuid(absl::StrCat("tenant/", shape.tenant_org)), shape.tenant_org,
              type_id,
              shape.tenant_quota_machines < 0 ? total_machines : shape.tenant_quota_machines);
  }
  return fleet;
}

absl::StatusOr<v1::Fleet> ReadFleetFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return ErrnoError(errno, "cannot open fleet file", path);
  std::string json;
  char buffer[1 << 16];
  size_t read;
  while ((read = std::fread(buffer, 1, sizeof(buffer), file)) > 0) json.append(buffer, read);
  const bool failed = std::ferror(file) != 0;
  const int read_errno = errno;
  std::fclose(file);
  if (failed) return ErrnoError(read_errno, "cannot read fleet file", path);

  v1::Fleet fleet;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &fleet, options);
  if (!parsed.ok()) {
    const auto message = parsed.message();
    return absl::InvalidArgumentError(
        absl::StrCat("fleet file ", path, " is not the JSON of an nvlsched.v1.Fleet: ",
                     absl::string_view(message.data(), message.size()),
                     " (write one with nvlsched-fleet, or see DemoFleet)"));
  }
  return fleet;
}

std::string FleetToJson(const v1::Fleet& fleet) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  std::string json;
  // A Fleet holds no Any or unresolvable field, so printing cannot fail.
  (void)google::protobuf::util::MessageToJsonString(fleet, &json, options);
  return json;
}

absl::Status WriteFleetFile(const std::string& path, const v1::Fleet& fleet) {
  const std::string json = FleetToJson(fleet);
  const std::string temporary = absl::StrCat(path, ".tmp");
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) return ErrnoError(errno, "cannot create fleet file", temporary);
  const bool written = std::fwrite(json.data(), 1, json.size(), file) == json.size();
  const int write_errno = errno;
  if (std::fclose(file) != 0 || !written) {
    const int error_number = written ? errno : write_errno;
    std::remove(temporary.c_str());
    return ErrnoError(error_number, "cannot write fleet file", temporary);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int rename_errno = errno;
    std::remove(temporary.c_str());
    return ErrnoError(rename_errno, "cannot rename the fleet file into place at", path);
  }
  return absl::OkStatus();
}

}  // namespace nvlsched::daemon
