# The allocator core must stay pure: no gRPC, protobuf, SQLite, logging or metrics headers.
# Including a system header does not need a link, so link lists alone cannot enforce this.
# We generate, at configure time, a "poison" include directory that mirrors every header of
# those libraries with a file that is a hard #error, and put it first on the allocator's
# include path. Any such #include in allocator/ then fails to compile.
set(NVLSCHED_POISON_DIR ${CMAKE_BINARY_DIR}/poison_include)
if(NOT EXISTS ${NVLSCHED_POISON_DIR}/.done)
  set(_poison_roots grpc grpcpp grpc++ google/protobuf SQLiteCpp spdlog prometheus)
  foreach(_root IN LISTS _poison_roots)
    file(GLOB_RECURSE _headers RELATIVE /usr/include /usr/include/${_root}/*)
    foreach(_h IN LISTS _headers)
      file(WRITE ${NVLSCHED_POISON_DIR}/${_h}
        "#error \"allocator/ is the pure placement core: it must not include ${_h} (see DESIGN.md)\"\n")
    endforeach()
  endforeach()
  foreach(_h sqlite3.h sqlite3ext.h)
    file(WRITE ${NVLSCHED_POISON_DIR}/${_h}
      "#error \"allocator/ is the pure placement core: it must not include ${_h} (see DESIGN.md)\"\n")
  endforeach()
  file(WRITE ${NVLSCHED_POISON_DIR}/.done "")
endif()

# nvlsched_make_pure(<target>): put the poison directory first on the target's include path.
function(nvlsched_make_pure target)
  target_include_directories(${target} BEFORE PRIVATE ${NVLSCHED_POISON_DIR})
endfunction()
