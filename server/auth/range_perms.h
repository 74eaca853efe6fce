// RangePerms: the key ranges one user may read or write, merged for fast checks (etcd's
// rangePermCache). An interval is [begin, end) over key bytes; end "" means no upper bound.
// Thread safety: immutable after Build; share it freely.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "authpb/auth.pb.h"

namespace cairn::auth {

class RangePerms {
 public:
  // Merges the permissions of `roles` (READWRITE counts for both).
  static RangePerms Build(const std::vector<const authpb::Role*>& roles);

  // etcd's request range: range_end "" is the single key `key`; range_end "\0" is every key
  // >= `key`; otherwise [key, range_end). True when one merged interval covers it all.
  bool CanRead(std::string_view key, std::string_view range_end) const {
    return Covered(read_, key, range_end);
  }
  bool CanWrite(std::string_view key, std::string_view range_end) const {
    return Covered(write_, key, range_end);
  }

 private:
  struct Interval {
    std::string begin;
    std::string end;  // "" = unbounded
  };
  static void Merge(std::vector<Interval>* v);
  static bool Covered(const std::vector<Interval>& v, std::string_view key,
                      std::string_view range_end);

  std::vector<Interval> read_;   // sorted, disjoint, not adjacent
  std::vector<Interval> write_;  // sorted, disjoint, not adjacent
};

}  // namespace cairn::auth
