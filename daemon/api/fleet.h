// Fleets: the demo fleet with fixed ids, generated fleets of any shape with ids derived from
// names, and the JSON fleet file that `nvlschedd --seed_fleet=FILE`, ApplyFleet (grpcurl -d)
// and the `nvlsched-fleet` tool share.
//
// The demo fleet (DemoFleet): site "demo-site-1"; one instance type "gb200-tray" (GB200, 4 GPUs
// of 186 GB HBM3e, $42.00 per machine-hour); 8 NVL72 domains "nvl72-rack-01".."nvl72-rack-08"
// of 18 trays each (144 machines, 576 GPUs), all READY; tenant org "demo" with a quota of 72
// machines of gb200-tray. Its ids never change, so READMEs and tests may quote them:
//   site           10000000-0000-4000-8000-000000000001   kDemoSiteId
//   instance type  20000000-0000-4000-8000-000000000001   kDemoInstanceTypeId
//   tenant         30000000-0000-4000-8000-000000000001   kDemoTenantId
//   domain d=1..8  40000000-0000-4000-8000-00000000000d   kDemoDomainIds[d-1], DemoDomainId(d)
//   machine        50000000-0000-4000-8000-0000000DDTTT   DemoMachineId(d, t): DD = domain 01..08,
//                  TTT = tray 000..017, e.g. domain 3 tray 17 = ...-8000-000000003017
//
// Thread-safety: pure functions, except ReadFleetFile/WriteFleetFile which touch the file
// system (WriteFleetFile replaces the file atomically).
#ifndef NVLSCHED_DAEMON_API_FLEET_H_
#define NVLSCHED_DAEMON_API_FLEET_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nvlsched/v1/resources.pb.h"

namespace nvlsched::daemon {

// GB200 per-GPU memory. NVIDIA's GB200 NVL72 specification gives "up to 13.4 TB HBM3e" for
// 72 GPUs (372 GB per Grace Blackwell superchip of 2 GPUs), i.e. 186 GB per GPU; the 192 GB
// often quoted is the raw HBM3e stack size. 186 GB = 186e9 / 2^20 MiB = 177,383 MiB.
inline constexpr int64_t kGb200GpuMemoryMib = 177383;
// Price of one gb200-tray machine-hour: 4 GPUs x $10.50 per GPU-hour, a plausible on-demand
// list price (CoreWeave lists a 4 x GB200 NVL72 instance at about $42.00 per hour).
inline constexpr double kGb200TrayPricePerHour = 42.0;
// Its spot price (preemptible capacity: a third of on-demand).
inline constexpr double kGb200TraySpotPricePerHour = 14.0;

inline constexpr absl::string_view kDemoSiteId = "10000000-0000-4000-8000-000000000001";
inline constexpr absl::string_view kDemoSiteName = "demo-site-1";
inline constexpr absl::string_view kDemoInstanceTypeId = "20000000-0000-4000-8000-000000000001";
inline constexpr absl::string_view kDemoInstanceTypeName = "gb200-tray";
inline constexpr absl::string_view kDemoGpuModel = "GB200";
inline constexpr absl::string_view kDemoInterconnect = "NVLink 5 (NVL72)";
inline constexpr absl::string_view kDemoTenantId = "30000000-0000-4000-8000-000000000001";
inline constexpr absl::string_view kDemoTenantOrg = "demo";
inline constexpr int kDemoDomainCount = 8;
inline constexpr int kDemoMachinesPerDomain = 18;
inline constexpr int kDemoGpusPerMachine = 4;
inline constexpr int64_t kDemoTenantQuotaMachines = 72;
inline constexpr absl::string_view kDemoDomainIds[kDemoDomainCount] = {
    "40000000-0000-4000-8000-000000000001", "40000000-0000-4000-8000-000000000002",
    "40000000-0000-4000-8000-000000000003", "40000000-0000-4000-8000-000000000004",
    "40000000-0000-4000-8000-000000000005", "40000000-0000-4000-8000-000000000006",
    "40000000-0000-4000-8000-000000000007", "40000000-0000-4000-8000-000000000008"};

// Demo ids by position. REQUIRES: 1 <= domain <= 8, 0 <= tray < 18.
std::string DemoDomainId(int domain);
std::string DemoMachineId(int domain, int tray);

// The demo fleet described above. Always the same message.
nvlsched::v1::Fleet DemoFleet();

// A deterministic UUID for `name`: the 128-bit FNV-1a hash of "nvlsched:" + name, its two
// 64-bit halves then mixed into each other with MurmurHash3's fmix64 (so that "tray-1" and
// "tray-2" differ everywhere), printed 8-4-4-4-12 with the version nibble set to 4 and the
// variant bits to 10, so that tools that check RFC 4122 versions accept it. It only looks random:
// the same name always gives the same id, which is what generated fleets and benchmarks need.
std::string NameBasedUuid(absl::string_view name);

// The shape of a generated fleet. Defaults: the demo's shape and hardware.
struct FleetShape {
  int domains = kDemoDomainCount;                    // 1..100000
  int machines_per_domain = kDemoMachinesPerDomain;  // 1..144
  int gpus_per_machine = kDemoGpusPerMachine;        // 1..kMaxGpusPerMachine (16)
  std::string site_name = "site-1";
  std::string instance_type_name = std::string(kDemoInstanceTypeName);
  std::string gpu_model = std::string(kDemoGpuModel);
  int64_t gpu_memory_mib = kGb200GpuMemoryMib;
  double price_per_hour = kGb200TrayPricePerHour;  // USD per machine-hour, >= 0
  double spot_price_per_hour = kGb200TraySpotPricePerHour;  // >= 0; 0: not sold as spot
  std::string interconnect = std::string(kDemoInterconnect);
  std::string tenant_org = std::string(kDemoTenantOrg);  // empty: no tenant
  // Machines of the instance type the tenant may hold; negative: every machine of the fleet.
  int64_t tenant_quota_machines = -1;
};

// A fleet of `shape`: machines READY, trays 0..M-1 in every domain. Names and ids:
//   site id        NameBasedUuid("site/<site_name>")
//   instance type  NameBasedUuid("instance_type/<instance_type_name>")
//   domain k       name "<site_name>-domain-<k, 3 digits from 000>",
//                  id NameBasedUuid("domain/<domain name>")
//   machine        NameBasedUuid("machine/<domain name>/tray-<t>")
//   tenant         NameBasedUuid("tenant/<tenant_org>"), name = org
// Errors: INVALID_ARGUMENT naming the bad shape field and its allowed range.
absl::StatusOr<nvlsched::v1::Fleet> GenerateFleet(const FleetShape& shape);

// Parses the JSON of nvlsched.v1.Fleet in `path` (camelCase or snake_case field names;
// unknown fields are errors, so a typo is not silently ignored). Does not validate the fleet:
// see ValidateFleet (validation.h).
// Errors: NOT_FOUND (no such file), PERMISSION_DENIED (unreadable), INVALID_ARGUMENT (not a
// Fleet: the message names the file and the parser's complaint); others from errno.
absl::StatusOr<nvlsched::v1::Fleet> ReadFleetFile(const std::string& path);

// The fleet as pretty-printed JSON (camelCase names, as the seed API writes them).
std::string FleetToJson(const nvlsched::v1::Fleet& fleet);

// Writes FleetToJson(fleet) to `path` through a temporary file and a rename, so a reader
// never sees half a fleet. Errors: from errno (e.g. NOT_FOUND for a missing directory,
// PERMISSION_DENIED), naming the path.
absl::Status WriteFleetFile(const std::string& path, const nvlsched::v1::Fleet& fleet);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_API_FLEET_H_
