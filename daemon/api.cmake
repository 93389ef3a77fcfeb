# nvlsched_api: the daemon's API edge that is not the server itself — request validation,
# absl::Status -> grpc::Status mapping with google.rpc details, and fleets (demo, generated,
# JSON files). Used by nvlschedd, the nvlsched-fleet tool, benchmarks and tests.
# Included from daemon/CMakeLists.txt.
add_library(nvlsched_api STATIC
  ${CMAKE_CURRENT_LIST_DIR}/field_checks.cc
  ${CMAKE_CURRENT_LIST_DIR}/field_violations.cc
  ${CMAKE_CURRENT_LIST_DIR}/fleet.cc
  ${CMAKE_CURRENT_LIST_DIR}/status_mapping.cc
  ${CMAKE_CURRENT_LIST_DIR}/validation.cc
  ${CMAKE_CURRENT_LIST_DIR}/validation_inventory.cc)
target_include_directories(nvlsched_api PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(nvlsched_api PUBLIC
  nvlsched_proto
  nvlsched_allocator          # allocator/errors.h: capacity and quota payloads
  gRPC::grpc++
  protobuf::libprotobuf
  absl::status
  absl::statusor
  absl::strings
  absl::str_format
  absl::cord
  absl::flat_hash_map
  absl::flat_hash_set
  absl::int128)
