#include "server/base/failpoint.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace cairn::base {
namespace {

struct Point {
  int err = 0;
  int64_t after = 0;
  std::atomic<int64_t> hits{0};
};

using Points = std::map<std::string, std::unique_ptr<Point>, std::less<>>;

const char* const kNames[] = {"fsync",     "write",        "preallocate",
                              "dir_fsync", "backend_sync", "backend_write"};

std::string Parse(absl::string_view spec, Points* points) {
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> name_action = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (name_action.size() != 2) return absl::StrCat("'", item, "': want name=action");
    bool known = false;
    for (const char* n : kNames) known = known || name_action[0] == n;
    if (!known) return absl::StrCat("unknown failpoint '", name_action[0], "'");
    auto point = std::make_unique<Point>();
    std::vector<absl::string_view> parts = absl::StrSplit(name_action[1], '@');
    if (parts[0] == "error") {
      point->err = EIO;
    } else if (parts[0] == "enospc") {
      point->err = ENOSPC;
    } else {
      return absl::StrCat("unknown action '", parts[0], "' (want error or enospc)");
    }
    for (size_t i = 1; i < parts.size(); ++i) {
      if (!absl::StartsWith(parts[i], "after:") ||
          !absl::SimpleAtoi(parts[i].substr(6), &point->after) || point->after < 0) {
        return absl::StrCat("bad modifier '", parts[i], "' (want after:N)");
      }
    }
    if (points != nullptr) (*points)[std::string(name_action[0])] = std::move(point);
  }
  return "";
}

const Points& Configured() {
  static const Points* points = [] {
    auto* p = new Points;
    const char* spec = std::getenv("CAIRN_FAILPOINTS");
    if (spec == nullptr || *spec == '\0') return p;
    std::string error = Parse(spec, p);
    if (!error.empty()) {
      std::cerr << "CAIRN_FAILPOINTS: " << error << std::endl;
      std::abort();
    }
    std::cerr << "WARNING: failpoints armed (CAIRN_FAILPOINTS=" << spec << "): test use only"
              << std::endl;
    return p;
  }();
  return *points;
}

}  // namespace

int FailpointErrno(std::string_view name) {
  const Points& points = Configured();
  if (points.empty()) return 0;
  auto it = points.find(name);
  if (it == points.end()) return 0;
  Point& point = *it->second;
  const int64_t hit = point.hits.fetch_add(1, std::memory_order_relaxed);
  return hit >= point.after ? point.err : 0;
}

std::string ValidateFailpoints(std::string_view spec) {
  return Parse(absl::string_view(spec.data(), spec.size()), nullptr);
}

}  // namespace cairn::base
