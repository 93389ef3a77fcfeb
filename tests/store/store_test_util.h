// Shared fixtures for the store tests: temporary directories and literal rows.
#ifndef NVLSCHED_TESTS_STORE_STORE_TEST_UTIL_H_
#define NVLSCHED_TESTS_STORE_STORE_TEST_UTIL_H_

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "store/rows.h"
#include "store/store.h"

namespace nvlsched::store::store_testing {

// Store::Open, with a test failure (and nullptr) when it fails.
inline std::unique_ptr<Store> OpenOrFail(const StoreOptions& options) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

// store.LoadAll(), with a test failure (and an empty state) when it fails.
inline LoadedState LoadOrFail(Store& store) {
  absl::StatusOr<LoadedState> state = store.LoadAll();
  EXPECT_TRUE(state.ok()) << state.status();
  return state.ok() ? *std::move(state) : LoadedState();
}

// A fresh directory under `base`, by default $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const char* base = nullptr) {
    if (base == nullptr) base = ::getenv("TMPDIR");
    std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/nvlsched_store_XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << pattern;
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

// Ids are readable stand-ins for UUIDs; the store treats them as opaque strings.
inline InstanceTypeRow MakeInstanceType(int i = 0) {
  return InstanceTypeRow{absl::StrCat("it-", i),
                         absl::StrCat("gb200-tray-", i),
                         "GB200",
                         4,
                         189471,
                         42000000 + i,
                         "nvlink5"};
}

inline DomainRow MakeDomain(int i = 0) {
  return DomainRow{absl::StrCat("dom-", i), absl::StrCat("nvl72-rack-", i), "site-1"};
}

inline MachineRow MakeMachine(int domain, int tray) {
  MachineRow row;
  row.id = absl::StrCat("m-", domain, "-", tray);
  row.domain_id = absl::StrCat("dom-", domain);
  row.tray_index = tray;
  row.instance_type_id = "it-0";
  row.gpu_count = 4;
  row.state = kMachineReady;
  row.labels = {{"rack", absl::StrCat("r", domain)}, {"tray", absl::StrCat(tray)}};
  return row;
}

inline TenantRow MakeTenant(int i = 0) {
  TenantRow row;
  row.id = absl::StrCat("t-", i);
  row.org = absl::StrCat("org-", i);
  row.name = absl::StrCat("Tenant ", i);
  row.quotas = {{"it-0", 72}};
  return row;
}

inline InstanceRow MakeInstance(const std::string& id, const std::string& name,
                                const std::string& machine_id, int tenant = 0) {
  InstanceRow row;
  row.id = id;
  row.name = name;
  row.tenant_id = absl::StrCat("t-", tenant);
  row.instance_type_id = "it-0";
  row.machine_id = machine_id;
  row.gpu_count = 4;
  row.whole_machine = true;
  row.batch_id = "batch-1";
  row.strict = true;
  row.nvlink_partition_ids = {"part-a", "part-b"};
  row.status = "READY";
  row.created_unix_micros = 1700000000000000;
  row.updated_unix_micros = 1700000000000001;
  row.details = std::string("\x08\x01\x12\x00serialized", 14);
  return row;
}

// One instance type, `domains` domains of `trays` machines, and `tenants` tenants.
inline ChangeSet MakeFleet(int domains = 2, int trays = 18, int tenants = 2) {
  ChangeSet changes;
  changes.upsert_instance_types.push_back(MakeInstanceType(0));
  for (int d = 0; d < domains; ++d) {
    changes.upsert_domains.push_back(MakeDomain(d));
    for (int t = 0; t < trays; ++t) changes.upsert_machines.push_back(MakeMachine(d, t));
  }
  for (int t = 0; t < tenants; ++t) changes.upsert_tenants.push_back(MakeTenant(t));
  changes.put_meta.push_back(MetaRow{"fleet_seeded", "1"});
  return changes;
}

}  // namespace nvlsched::store::store_testing

#endif  // NVLSCHED_TESTS_STORE_STORE_TEST_UTIL_H_
