# nvlsched_add_test(NAME <name> LABEL <unit|store|grpc|e2e|pg> SOURCES <...> LIBS <...> [TIMEOUT s]
#                   [NEEDS_DAEMON])
# One gtest executable per call, registered with ctest under its label. NEEDS_DAEMON: the test
# runs the real nvlschedd binary, whose path it gets as NVLSCHEDD_PATH.
# NVLSCHED_TEST_LABELS (default: all) limits which tiers are built at all, so the sanitizer
# builds compile only what they run.
# pg: tests against a real PostgreSQL, whose URI they read from NVLSCHED_TEST_PG_URI
# (tools/test.sh starts one with tools/pg_dev.sh).
set(NVLSCHED_TEST_LABELS "unit;store;grpc;e2e;pg" CACHE STRING "Test tiers to build")
# A build directory configured before the pg tier existed cached the old default, "all" then.
if(NVLSCHED_TEST_LABELS STREQUAL "unit;store;grpc;e2e")
  set_property(CACHE NVLSCHED_TEST_LABELS PROPERTY VALUE "unit;store;grpc;e2e;pg")
endif()
function(nvlsched_add_test)
  cmake_parse_arguments(T "NEEDS_DAEMON" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_LABEL IN_LIST NVLSCHED_TEST_LABELS)
    return()
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  if(T_NEEDS_DAEMON)
    target_compile_definitions(${T_NAME} PRIVATE NVLSCHEDD_PATH="$<TARGET_FILE:nvlschedd>")
    add_dependencies(${T_NAME} nvlschedd)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT})
endfunction()
