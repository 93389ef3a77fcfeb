// Debian's Abseil 20220623 is built with ABSL_OPTION_USE_STD_STRING_VIEW 0, so
// absl::string_view is its own type and does not convert from std::string_view. The
// allocator's API speaks std::string_view; this converts where Abseil needs its own
// (StrCat arguments, heterogeneous lookup in flat_hash_map<std::string, ...>).
#ifndef NVLSCHED_ALLOCATOR_STRING_VIEW_COMPAT_H_
#define NVLSCHED_ALLOCATOR_STRING_VIEW_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace nvlsched::allocator {

inline absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }
// The other way, for the allocator's API from code holding an absl::string_view.
inline std::string_view StdView(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_STRING_VIEW_COMPAT_H_
