# The inventory, capacity and admin services and the snapshot scheduler, part of
# nvlsched_daemon. Included from daemon/CMakeLists.txt.
target_sources(nvlsched_daemon PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/inventory_service.cc
  ${CMAKE_CURRENT_LIST_DIR}/inventory_ops.cc
  ${CMAKE_CURRENT_LIST_DIR}/inventory_reads.cc
  ${CMAKE_CURRENT_LIST_DIR}/capacity_service.cc
  ${CMAKE_CURRENT_LIST_DIR}/admin_service.cc
  ${CMAKE_CURRENT_LIST_DIR}/snapshot_scheduler.cc)
