#include "server/auth/range_perms.h"

#include <algorithm>

namespace cairn::auth {
namespace {

// The interval of a stored permission (etcd: range_end "" = one key, "\0" = from key).
bool ToInterval(std::string_view key, std::string_view range_end, std::string* begin,
                std::string* end) {
  *begin = std::string(key);
  if (range_end.empty()) {
    *end = std::string(key) + '\0';  // the smallest key after `key`
  } else if (range_end == std::string_view("\0", 1)) {
    end->clear();
  } else {
    if (range_end <= key) return false;  // empty range: grants nothing
    *end = std::string(range_end);
  }
  return true;
}

// a <= b for ends where "" is +infinity.
bool EndLessEq(const std::string& a, const std::string& b) {
  if (b.empty()) return true;
  if (a.empty()) return false;
  return a <= b;
}

}  // namespace

RangePerms RangePerms::Build(const std::vector<const authpb::Role*>& roles) {
  RangePerms p;
  for (const authpb::Role* role : roles) {
    for (const authpb::Permission& perm : role->keypermission()) {
      Interval iv;
      if (!ToInterval(perm.key(), perm.range_end(), &iv.begin, &iv.end)) continue;
      if (perm.permtype() != authpb::Permission::WRITE) p.read_.push_back(iv);
      if (perm.permtype() != authpb::Permission::READ) p.write_.push_back(iv);
    }
  }
  Merge(&p.read_);
  Merge(&p.write_);
  return p;
}

void RangePerms::Merge(std::vector<Interval>* v) {
  std::sort(v->begin(), v->end(),
            [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
  std::vector<Interval> out;
  for (Interval& iv : *v) {
    // Overlapping or touching ([a, b) then [b, c)) intervals merge into one.
    if (!out.empty() && (out.back().end.empty() || iv.begin <= out.back().end)) {
      if (!EndLessEq(iv.end, out.back().end)) out.back().end = iv.end;
      continue;
    }
    out.push_back(std::move(iv));
  }
  *v = std::move(out);
}

bool RangePerms::Covered(const std::vector<Interval>& v, std::string_view key,
                         std::string_view range_end) {
  std::string begin, end;
  if (!ToInterval(key, range_end, &begin, &end)) {
    // An empty request range ([k, e) with e <= k) reads or writes nothing, but etcd still
    // requires the key itself to be covered.
    end = begin + '\0';
  }
  // The last interval starting at or before `begin`.
  auto it = std::upper_bound(v.begin(), v.end(), begin,
                             [](const std::string& k, const Interval& iv) { return k < iv.begin; });
  if (it == v.begin()) return false;
  --it;
  return EndLessEq(end, it->end) && (it->end.empty() || begin < it->end);
}

}  // namespace cairn::auth
