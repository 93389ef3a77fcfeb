// Tests allocator/id_view_index.h.
#include "allocator/id_view_index.h"

#include <string>

#include "gtest/gtest.h"

namespace nvlsched::allocator {
namespace {

TEST(IdViewIndexTest, FindsInsertedIdsAndForgetsErasedOnes) {
  std::string a = "8c4f7f5e-0000-4000-8000-000000000001";
  std::string b = "8c4f7f5e-0000-4000-8000-000000000002";
  IdViewIndex index;
  index.Insert(a, 1);
  size_t hash_b = IdViewIndex::Hash(b);
  index.Insert(b, hash_b, 2);
  EXPECT_EQ(index.Find(std::string(a)), 1u);  // equal characters elsewhere find it too
  EXPECT_EQ(index.Find(b), 2u);
  EXPECT_EQ(index.Find("nope"), kNoIndex);
  index.Erase(b, hash_b);
  EXPECT_EQ(index.Find(b), kNoIndex);
  index.Erase(a);
  EXPECT_EQ(index.size(), 0u);
}

TEST(IdViewIndexTest, HashDependsOnlyOnTheCharacters) {
  std::string x = "rack-7";
  EXPECT_EQ(IdViewIndex::Hash(x), IdViewIndex::Hash(std::string("rack-7")));
  EXPECT_NE(IdViewIndex::Hash("rack-7"), IdViewIndex::Hash("rack-8"));
}

}  // namespace
}  // namespace nvlsched::allocator
