// Internal: conversions between the public types and etcd's protobuf messages, applying the
// client's key prefix (namespace).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "cairn/kv.h"
#include "client/src/core.h"
#include "etcdserverpb/rpc.pb.h"
#include "mvccpb/kv.pb.h"

namespace cairn::internal {

std::string RangeEndFor(const Core& core, const std::string& key, const RangeSpec& spec);
absl::Status CheckKey(const std::string& key, const RangeSpec& spec);
void ToKeyValue(const Core& core, const mvccpb::KeyValue& from, KeyValue* to);

}  // namespace cairn::internal
