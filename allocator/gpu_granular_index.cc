#include "allocator/gpu_granular_index.h"

namespace nvlsched::allocator {

void GpuGranularIndex::Reserve(uint32_t num_domains) {
  for (auto& by_class : sets_) {
    for (DomainSet& set : by_class) set.Reserve(num_domains);
  }
}

}  // namespace nvlsched::allocator
