// IdViewIndex: a hash index from id strings to dense indices, where the strings are owned
// by the records themselves (stable addresses: StableVector slots), so inserting an id never
// allocates a key. Each key carries its hash, so a caller that stored the hash at insert
// time erases without hashing the id again. FleetState indexes machines with it (instances
// have no id index at all: they are named by InstanceHandle).
//
// Thread-safety: not synchronized; owned by FleetState.
// Cost: Find/Insert/Erase O(1) expected; no allocation once the table has grown (erased
// slots are reclaimed in place).
#ifndef NVLSCHED_ALLOCATOR_ID_VIEW_INDEX_H_
#define NVLSCHED_ALLOCATOR_ID_VIEW_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "allocator/placement.h"

namespace nvlsched::allocator {

class IdViewIndex {
 public:
  static size_t Hash(std::string_view id) {
    return absl::Hash<absl::string_view>()(absl::string_view(id.data(), id.size()));
  }

  // kNoIndex when absent.
  uint32_t Find(std::string_view id) const {
    auto it = map_.find(Key{id, Hash(id)});
    return it == map_.end() ? kNoIndex : it->second;
  }
  // REQUIRES: id is not present; its characters outlive the entry; hash == Hash(id).
  void Insert(std::string_view id, size_t hash, uint32_t index) { map_.emplace(Key{id, hash}, index); }
  void Insert(std::string_view id, uint32_t index) { Insert(id, Hash(id), index); }
  void Erase(std::string_view id, size_t hash) { map_.erase(Key{id, hash}); }
  void Erase(std::string_view id) { Erase(id, Hash(id)); }
  size_t size() const { return map_.size(); }

 private:
  struct Key {
    std::string_view id;
    size_t hash;
  };
  struct KeyHash {
    size_t operator()(const Key& key) const { return key.hash; }
  };
  struct KeyEq {
    bool operator()(const Key& a, const Key& b) const { return a.hash == b.hash && a.id == b.id; }
  };

  absl::flat_hash_map<Key, uint32_t, KeyHash, KeyEq> map_;
};

}  // namespace nvlsched::allocator

#endif  // NVLSCHED_ALLOCATOR_ID_VIEW_INDEX_H_
