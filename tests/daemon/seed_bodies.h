// The two example request bodies of shared/seeds/000_*.txt, verbatim, shared by the tests that
// check the API accepts them (validation_test.cc, instance_service_test.cc).
#ifndef NVLSCHED_TESTS_DAEMON_SEED_BODIES_H_
#define NVLSCHED_TESTS_DAEMON_SEED_BODIES_H_

namespace nvlsched::daemon::testing {

// "Topology-optimized batch with InfiniBand" and "Cross-domain batch with VPC Prefix".
inline constexpr char kSeedStrictBody[] = R"json({
  "namePrefix": "gpu-worker",
  "count": 4,
  "tenantId": "f97df110-f4de-492e-8849-4a6af68026b0",
  "instanceTypeId": "41e36058-8403-4086-a9b8-39cb5bc9cb98",
  "vpcId": "5e28ad7c-5fb7-46d6-a28a-fc0ba6fdc4a3",
  "interfaces": [
    {
      "subnetId": "1f232bf0-7b90-456e-b9b0-38d9fea4171a",
      "isPhysical": true
    }
  ],
  "description": "GPU worker nodes for distributed training",
  "operatingSystemId": "eaeb86ee-c435-444e-9e01-8346f67f194b",
  "infinibandInterfaces": [
    {
      "partitionId": "4f4decba-7d7f-46b9-9e5f-e5d71c2e0666",
      "device": "MT2910 Family [ConnectX-7]",
      "deviceInstance": 0,
      "isPhysical": true
    }
  ],
  "nvLinkInterfaces": [
    {
      "deviceInstance": 0,
      "nvLinkLogicalPartitionId": "2f8676fd-d228-4db5-ac76-1cfc74f48a23"
    },
    {
      "deviceInstance": 1,
      "nvLinkLogicalPartitionId": "2f8676fd-d228-4db5-ac76-1cfc74f48a23"
    }
  ],
  "sshKeyGroupIds": [
    "497f6eca-6276-4993-bfeb-53cbbbba6f08"
  ],
  "topologyOptimized": true
})json";

inline constexpr char kSeedCrossDomainBody[] = R"json({
  "namePrefix": "inference-node",
  "count": 8,
  "tenantId": "f97df110-f4de-492e-8849-4a6af68026b0",
  "instanceTypeId": "83e71f8f-65d3-44ba-92ba-19daac2e497a",
  "vpcId": "ebcd2d2a-deca-4ac4-b079-d7a97fff8a6b",
  "interfaces": [
    {
      "vpcPrefixId": "000bc42b-f946-472e-83d4-ddf7e365e148",
      "isPhysical": true
    }
  ],
  "description": "Inference nodes spread across NVLink domains",
  "operatingSystemId": "eaeb86ee-c435-444e-9e01-8346f67f194b",
  "labels": {
    "workload": "inference",
    "tier": "production"
  },
  "sshKeyGroupIds": [
    "a7bf2f9c-12f0-4673-be47-12be6d9e16c8"
  ],
  "topologyOptimized": false
})json";

}  // namespace nvlsched::daemon::testing

#endif  // NVLSCHED_TESTS_DAEMON_SEED_BODIES_H_
