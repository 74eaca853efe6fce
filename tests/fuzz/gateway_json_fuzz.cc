// The HTTP gateway's JSON decoding (server/api/gateway/body_stream.h) over any bytes: the first
// byte picks the request message a route decodes into, the rest is a request body, split into
// its top-level objects (SplitObjects, as for a streamed Watch or LeaseKeepAlive body) and each
// decoded from proto3 JSON (FromJson). Property: no crash, and an error always says why.
#include <cstdlib>
#include <memory>

#include "etcdserverpb/rpc.pb.h"
#include "server/api/gateway/body_stream.h"
#include "tests/fuzz/fuzz_target.h"
#include "v3electionpb/v3election.pb.h"
#include "v3lockpb/v3lock.pb.h"

namespace {

std::unique_ptr<google::protobuf::Message> MessageFor(uint8_t selector) {
  switch (selector % 10) {
    case 0:
      return std::make_unique<etcdserverpb::RangeRequest>();
    case 1:
      return std::make_unique<etcdserverpb::PutRequest>();
    case 2:
      return std::make_unique<etcdserverpb::DeleteRangeRequest>();
    case 3:
      return std::make_unique<etcdserverpb::TxnRequest>();
    case 4:
      return std::make_unique<etcdserverpb::WatchRequest>();
    case 5:
      return std::make_unique<etcdserverpb::LeaseKeepAliveRequest>();
    case 6:
      return std::make_unique<etcdserverpb::AuthenticateRequest>();
    case 7:
      return std::make_unique<etcdserverpb::AuthRoleGrantPermissionRequest>();
    case 8:
      return std::make_unique<v3lockpb::LockRequest>();
    default:
      return std::make_unique<v3electionpb::ProclaimRequest>();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string> objects;
  std::string error;
  if (!cairn::api::gateway::SplitObjects(body, &objects, &error)) {
    if (error.empty()) std::abort();  // a refusal always says why (the client's 400 message)
    return 0;
  }
  for (const std::string& object : objects) {
    auto m = MessageFor(data[0]);
    error.clear();
    if (!cairn::api::gateway::FromJson(object, m.get(), &error) && error.empty()) std::abort();
  }
  return 0;
}

std::vector<std::string> FuzzSeeds() {
  return {
      std::string(1, '\0') + R"({"key":"Zm9v","range_end":"Zm9w","limit":"10","revision":"3"})",
      std::string(1, '\1') + R"({"key":"Zm9v","value":"YmFy","lease":"7","prev_kv":true})",
      std::string(1, '\3') +
          R"({"compare":[{"key":"YQ==","target":"VALUE","result":"EQUAL","value":"Yg=="}],)"
          R"("success":[{"request_put":{"key":"YQ==","value":"Yw=="}}],)"
          R"("failure":[{"request_range":{"key":"YQ=="}}]})",
      std::string(1, '\4') + R"({"create_request":{"key":"YQ==","start_revision":"2"}})" +
          R"({"cancel_request":{"watch_id":"0"}})",
      std::string(1, '\5') + R"({"ID":"7587"} {"ID":"7588"})",
      std::string(1, '\6') + R"({"name":"root","password":"pw"})",
      std::string(1, '\7') +
          R"({"name":"r","perm":{"permType":"READWRITE","key":"YQ==","range_end":"Yg=="}})",
      std::string(1, '\10') + R"({"name":"bG9jaw==","lease":"5"})",
      std::string(1, '\11') +
          R"({"leader":{"name":"ZQ==","key":"ZS8x","rev":"4","lease":"5"},"value":"dg=="})",
  };
}
