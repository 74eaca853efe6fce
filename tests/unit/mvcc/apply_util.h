// Applies one KV or lease request to a KvStore as the member's applier does (one entry, one
// batch), for the mvcc and lease unit tests.
#pragma once

#include <cstdint>

#include "cairnpb/internal.pb.h"
#include "server/etcdserver/applier.h"
#include "server/mvcc/kv_store.h"

namespace cairn::mvcc::testing {

inline ApplyResult ApplyRequest(KvStore* kv, uint64_t index,
                                const cairnpb::InternalRequest& request) {
  auto batch = kv->Begin(index);
  ApplyResult result = etcdserver::ApplyKvRequest(kv, *batch, request);
  kv->Commit(*batch, &result);
  return result;
}

}  // namespace cairn::mvcc::testing
