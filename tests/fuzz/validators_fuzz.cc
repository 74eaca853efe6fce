// The gRPC request validators (server/api/validate.h) over any bytes: the first byte picks the
// request type, the rest is parsed as that protobuf; a parsed request is validated.
#include "etcdserverpb/rpc.pb.h"
#include "server/api/validate.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const char* body = reinterpret_cast<const char*>(data + 1);
  const int n = static_cast<int>(size - 1);
  switch (data[0] % 4) {
    case 0: {
      etcdserverpb::RangeRequest r;
      if (r.ParseFromArray(body, n)) (void)cairn::api::ValidateRange(r);
      break;
    }
    case 1: {
      etcdserverpb::PutRequest r;
      if (r.ParseFromArray(body, n)) (void)cairn::api::ValidatePut(r);
      break;
    }
    case 2: {
      etcdserverpb::DeleteRangeRequest r;
      if (r.ParseFromArray(body, n)) (void)cairn::api::ValidateDeleteRange(r);
      break;
    }
    default: {
      etcdserverpb::TxnRequest r;
      if (r.ParseFromArray(body, n)) (void)cairn::api::ValidateTxn(r, 128);
      break;
    }
  }
  return 0;
}

std::vector<std::string> FuzzSeeds() {
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("k");
  cmp->set_target(etcdserverpb::Compare::VALUE);
  cmp->set_value("v");
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key("k");
  put->set_value("w");
  auto* nested = txn.add_failure()->mutable_request_txn();
  nested->add_success()->mutable_request_delete_range()->set_key("a");
  nested->add_success()->mutable_request_range()->set_key("a");
  etcdserverpb::RangeRequest range;
  range.set_key("a");
  range.set_range_end("z");
  range.set_limit(5);
  range.set_revision(3);
  etcdserverpb::PutRequest p;
  p.set_key("k");
  p.set_value("v");
  p.set_lease(7);
  etcdserverpb::DeleteRangeRequest d;
  d.set_key("a");
  d.set_range_end(std::string(1, '\0'));
  return {std::string(1, '\0') + range.SerializeAsString(),
          std::string(1, '\1') + p.SerializeAsString(),
          std::string(1, '\2') + d.SerializeAsString(),
          std::string(1, '\3') + txn.SerializeAsString()};
}
