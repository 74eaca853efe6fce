// Names the calling thread, so `top -H`, `perf report --sort comm` and gdb show which of the
// member's threads spends the time (docs/threading.md lists them). Linux keeps at most 15
// characters; a longer name is cut. Best effort: a failure is ignored.
#pragma once

namespace cairn::base {

void SetThreadName(const char* name);

}  // namespace cairn::base
