// nvlsched-fleet: writes a fleet (JSON of nvlsched.v1.Fleet) that `nvlschedd --seed_fleet=FILE`
// and InventoryService.ApplyFleet accept. Either the demo fleet with its fixed ids (--demo),
// or a generated one of any shape with ids derived from names (see daemon/api/fleet.h).
//
//   nvlsched-fleet --demo --out=demo.json
//   nvlsched-fleet --domains=64 --machines_per_domain=18 --out=big.json
//   nvlsched-fleet --domains=2 | grpcurl -plaintext -d "{\"fleet\": $(cat)}" ...
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/api/fleet.h"
#include "daemon/api/validation.h"

ABSL_FLAG(bool, demo, false,
          "write the demo fleet (8 NVL72 domains of 18 gb200-tray machines, tenant org 'demo', "
          "fixed ids); the shape flags are then ignored");
ABSL_FLAG(int, domains, nvlsched::daemon::kDemoDomainCount, "NVLink domains (1..100000)");
ABSL_FLAG(int, machines_per_domain, nvlsched::daemon::kDemoMachinesPerDomain,
          "machines (trays) per NVLink domain (1..144)");
ABSL_FLAG(int, gpus_per_machine, nvlsched::daemon::kDemoGpusPerMachine, "GPUs per machine (1..64)");
ABSL_FLAG(std::string, site, "site-1", "site name (the site id is derived from it)");
ABSL_FLAG(std::string, instance_type, std::string(nvlsched::daemon::kDemoInstanceTypeName),
          "instance type name (its id is derived from it)");
ABSL_FLAG(std::string, gpu_model, std::string(nvlsched::daemon::kDemoGpuModel), "GPU model");
ABSL_FLAG(int64_t, gpu_memory_mib, nvlsched::daemon::kGb200GpuMemoryMib, "memory of one GPU, MiB");
ABSL_FLAG(double, price_per_hour, nvlsched::daemon::kGb200TrayPricePerHour,
          "price of one machine-hour in USD");
ABSL_FLAG(double, spot_price_per_hour, nvlsched::daemon::kGb200TraySpotPricePerHour,
          "spot (preemptible) USD per machine-hour of the instance type; 0: not sold as spot");
ABSL_FLAG(std::string, interconnect, std::string(nvlsched::daemon::kDemoInterconnect),
          "interconnect shown in offers");
ABSL_FLAG(std::string, tenant_org, std::string(nvlsched::daemon::kDemoTenantOrg),
          "org of the one tenant of the fleet (empty: no tenant)");
ABSL_FLAG(int64_t, tenant_quota_machines, -1,
          "machines of the instance type the tenant may hold at once (negative: all machines)");
ABSL_FLAG(std::string, out, "", "file to write (replaced atomically); empty: standard output");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "nvlsched-fleet: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "nvlsched-fleet: write a fleet file (JSON nvlsched.v1.Fleet) for nvlschedd --seed_fleet "
      "and ApplyFleet.\nUsage: nvlsched-fleet [--demo | --domains=N --machines_per_domain=M "
      "--gpus_per_machine=G ...] [--out=FILE]");
  absl::ParseCommandLine(argc, argv);

  nvlsched::v1::Fleet fleet;
  if (absl::GetFlag(FLAGS_demo)) {
    fleet = nvlsched::daemon::DemoFleet();
  } else {
    nvlsched::daemon::FleetShape shape;
    shape.domains = absl::GetFlag(FLAGS_domains);
    shape.machines_per_domain = absl::GetFlag(FLAGS_machines_per_domain);
    shape.gpus_per_machine = absl::GetFlag(FLAGS_gpus_per_machine);
    shape.site_name = absl::GetFlag(FLAGS_site);
    shape.instance_type_name = absl::GetFlag(FLAGS_instance_type);
    shape.gpu_model = absl::GetFlag(FLAGS_gpu_model);
    shape.gpu_memory_mib = absl::GetFlag(FLAGS_gpu_memory_mib);
    shape.price_per_hour = absl::GetFlag(FLAGS_price_per_hour);
    shape.spot_price_per_hour = absl::GetFlag(FLAGS_spot_price_per_hour);
    shape.interconnect = absl::GetFlag(FLAGS_interconnect);
    shape.tenant_org = absl::GetFlag(FLAGS_tenant_org);
    shape.tenant_quota_machines = absl::GetFlag(FLAGS_tenant_quota_machines);
    absl::StatusOr<nvlsched::v1::Fleet> generated = nvlsched::daemon::GenerateFleet(shape);
    if (!generated.ok()) return Fail(generated.status());
    fleet = *std::move(generated);
  }
  // The same check ApplyFleet makes, so a bad flag value is reported here, not by the daemon.
  if (absl::Status valid = nvlsched::daemon::ValidateFleet(fleet, {}); !valid.ok()) {
    return Fail(valid);
  }

  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) {
    const std::string json = nvlsched::daemon::FleetToJson(fleet);
    std::fwrite(json.data(), 1, json.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
  }
  if (absl::Status written = nvlsched::daemon::WriteFleetFile(out, fleet); !written.ok()) {
    return Fail(written);
  }
  std::fprintf(stderr,
               "nvlsched-fleet: wrote %s: %d instance type(s), %d domains, %d machines, "
               "%d tenant(s)\n",
               out.c_str(), fleet.instance_types_size(), fleet.domains_size(),
               fleet.machines_size(), fleet.tenants_size());
  return 0;
}
