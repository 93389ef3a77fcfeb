// Tests allocator/string_view_compat.h.
#include "allocator/string_view_compat.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(StringViewCompatTest, ViewsTheSameCharacters) {
  std::string text = "rack-7";
  std::string_view view(text);
  absl::string_view converted = AbslView(view);
  EXPECT_EQ(converted.data(), text.data());
  EXPECT_EQ(absl::StrCat("domain ", AbslView(view)), "domain rack-7");
}

}  // namespace
}  // namespace nvlsched::allocator
