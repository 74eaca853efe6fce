// CAIRN_CHECK: programmer-error assertions that abort in every build (ARCHITECTURE.md "Errors").
//
//   CAIRN_CHECK(index <= last_index) << "index " << index << " past the log end";
//
// Thread-safe. The message is streamed only when the condition fails.
#pragma once

#include <sstream>
#include <string_view>

namespace cairn::base {

// Collects the failure message and aborts the process in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `cond ? (void)0 : Voidify() & stream` type-check as void in both arms.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace cairn::base

#define CAIRN_CHECK(cond)    \
  (cond)                     \
      ? static_cast<void>(0) \
      : ::cairn::base::Voidify() & ::cairn::base::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define CAIRN_CHECK_OK(status_expr)                                                \
  do {                                                                             \
    const auto& cairn_check_ok_status_ = (status_expr);                            \
    CAIRN_CHECK(cairn_check_ok_status_.ok()) << cairn_check_ok_status_.ToString(); \
  } while (0)
