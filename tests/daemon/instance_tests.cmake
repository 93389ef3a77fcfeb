# gRPC tests of InstanceService over the in-process harness (service_fixture.h, with the
# shared InstanceServiceTest fixture in instance_test_fixture.h). Included from
# tests/daemon/CMakeLists.txt after services_tests.cmake, which defines
# nvlsched_service_fixture.
nvlsched_add_test(NAME instance_service_test LABEL grpc
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/instance_service_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/instance_idempotency_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/instance_errors_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/instance_lifecycle_test.cc
          ${CMAKE_CURRENT_LIST_DIR}/instance_concurrency_test.cc
  LIBS nvlsched_service_fixture)
