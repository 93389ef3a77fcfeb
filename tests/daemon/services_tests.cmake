# gRPC tests of the inventory, capacity and admin services, over the in-process harness
# (service_fixture.h). Included from tests/daemon/CMakeLists.txt.
add_library(nvlsched_service_fixture STATIC ${CMAKE_CURRENT_LIST_DIR}/service_fixture.cc)
target_include_directories(nvlsched_service_fixture PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(nvlsched_service_fixture PUBLIC
  nvlsched_daemon
  GTest::gtest
  GTest::gmock
  absl::str_format)

nvlsched_add_test(NAME inventory_service_test LABEL grpc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/inventory_service_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/inventory_fleet_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/inventory_tenant_test.cc
  LIBS nvlsched_service_fixture)
nvlsched_add_test(NAME capacity_service_test LABEL grpc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/capacity_service_test.cc
  LIBS nvlsched_service_fixture)
nvlsched_add_test(NAME admin_service_test LABEL grpc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/admin_service_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/snapshot_scheduler_test.cc
  LIBS nvlsched_service_fixture)
nvlsched_add_test(NAME authorization_test LABEL grpc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/authorization_test.cc
  LIBS nvlsched_service_fixture)
