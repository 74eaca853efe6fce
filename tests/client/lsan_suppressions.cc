// LeakSanitizer suppressions for the client tests (used only in -DCAIRN_SANITIZE=ON builds).
//
// The client keeps gRPC's process-wide callback completion queue alive on purpose (see
// PinCallbackCompletionQueue in client/src/core.cc): gRPC core's objects behind it are never
// freed and show up as indirect leaks at exit. Only allocations made inside gRPC core
// (libgrpc/libgpr) are suppressed; the client's own allocations are still checked.
extern "C" const char* __lsan_default_suppressions() { return "leak:libgrpc.so\nleak:libgpr.so\n"; }
