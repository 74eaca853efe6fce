#include "server/base/thread_name.h"

#include <pthread.h>

#include <cstring>
#include <string>

namespace cairn::base {

void SetThreadName(const char* name) {
  std::string cut(name, strnlen(name, 15));  // the kernel's limit: 16 bytes with the NUL
  (void)pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace cairn::base
