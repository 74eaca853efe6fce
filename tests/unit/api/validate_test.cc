#include "server/api/validate.h"

#include "gtest/gtest.h"
#include "server/base/errors.h"

namespace cairn::api {
namespace {

using base::ErrorKind;
using base::IsError;
using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

void AddPut(google::protobuf::RepeatedPtrField<RequestOp>* ops, const std::string& k) {
  ops->Add()->mutable_request_put()->set_key(k);
}
void AddDel(google::protobuf::RepeatedPtrField<RequestOp>* ops, const std::string& k,
            const std::string& end = "") {
  auto* d = ops->Add()->mutable_request_delete_range();
  d->set_key(k);
  d->set_range_end(end);
}

TEST(ValidateTest, PutChecks) {
  etcdserverpb::PutRequest p;
  EXPECT_TRUE(IsError(ValidatePut(p), ErrorKind::kEmptyKey));
  p.set_key("k");
  p.set_ignore_value(true);
  p.set_value("v");
  EXPECT_TRUE(IsError(ValidatePut(p), ErrorKind::kValueProvided));
  p.clear_value();
  p.set_ignore_lease(true);
  p.set_lease(5);
  EXPECT_TRUE(IsError(ValidatePut(p), ErrorKind::kLeaseProvided));
  p.clear_lease();
  EXPECT_TRUE(ValidatePut(p).ok());
}

TEST(ValidateTest, TooManyOpsCountsTheLargestList) {
  TxnRequest t;
  for (int i = 0; i < 128; ++i) AddPut(t.mutable_success(), "k" + std::to_string(i));
  EXPECT_TRUE(ValidateTxn(t, 128).ok());
  AddPut(t.mutable_failure(), "x");
  for (int i = 0; i < 129; ++i) t.add_compare()->set_key("c");
  EXPECT_TRUE(IsError(ValidateTxn(t, 128), ErrorKind::kTooManyOps));
}

TEST(ValidateTest, EmptyOpAndEmptyCompareKey) {
  TxnRequest t;
  t.add_success();
  EXPECT_TRUE(IsError(ValidateTxn(t, 128), ErrorKind::kKeyNotFound));
  TxnRequest c;
  c.add_compare();
  EXPECT_TRUE(IsError(ValidateTxn(c, 128), ErrorKind::kEmptyKey));
}

TEST(ValidateTest, DuplicateKeys) {
  struct Case {
    const char* name;
    std::function<void(TxnRequest*)> build;
    bool duplicate;
  };
  const Case cases[] = {
      {"two puts",
       [](TxnRequest* t) { AddPut(t->mutable_success(), "a"), AddPut(t->mutable_success(), "a"); },
       true},
      {"put in success and failure",
       [](TxnRequest* t) { AddPut(t->mutable_success(), "a"), AddPut(t->mutable_failure(), "a"); },
       false},
      {"put inside deleted range",
       [](TxnRequest* t) {
         AddDel(t->mutable_success(), "a", "c"), AddPut(t->mutable_success(), "b");
       },
       true},
      {"put outside deleted range",
       [](TxnRequest* t) {
         AddDel(t->mutable_success(), "a", "c"), AddPut(t->mutable_success(), "c");
       },
       false},
      {"put under a from-key delete is allowed, as etcd",
       [](TxnRequest* t) {
         AddDel(t->mutable_success(), "b", std::string(1, '\0'));
         AddPut(t->mutable_success(), "k1");
       },
       false},
      {"overlapping deletes",
       [](TxnRequest* t) {
         AddDel(t->mutable_success(), "a", "c"), AddDel(t->mutable_success(), "b", "d");
       },
       false},
      {"nested then/else may share a key",
       [](TxnRequest* t) {
         auto* n = t->add_success()->mutable_request_txn();
         AddPut(n->mutable_success(), "a");
         AddPut(n->mutable_failure(), "a");
       },
       false},
      {"nested put and outer put",
       [](TxnRequest* t) {
         auto* n = t->add_success()->mutable_request_txn();
         AddPut(n->mutable_success(), "a");
         AddPut(t->mutable_success(), "a");
       },
       true},
      {"nested put under outer delete",
       [](TxnRequest* t) {
         AddDel(t->mutable_success(), "a");
         auto* n = t->add_success()->mutable_request_txn();
         AddPut(n->mutable_failure(), "a");
       },
       true},
  };
  for (const Case& c : cases) {
    TxnRequest t;
    c.build(&t);
    absl::Status s = ValidateTxn(t, 128);
    EXPECT_EQ(IsError(s, ErrorKind::kDuplicateKey), c.duplicate) << c.name << ": " << s;
    if (!c.duplicate) {
      EXPECT_TRUE(s.ok()) << c.name << ": " << s;
    }
  }
}

}  // namespace
}  // namespace cairn::api
