// The base of the mvcc unit tests: a KvStore over a fresh RocksDB directory, reopened on demand
// (as a restart does) and removed after the test.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "server/mvcc/kv_store.h"
#include "server/storage/backend.h"

namespace cairn::mvcc::testing {

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-mvcc-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Open();
  }
  void TearDown() override {
    kv_.reset();
    backend_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    auto b = storage::Backend::Open(dir_ + "/db");
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
    kv_ = std::make_unique<KvStore>(backend_.get());
  }
  void Reopen() {
    kv_.reset();
    backend_.reset();
    Open();
  }

  std::string dir_;
  std::unique_ptr<storage::Backend> backend_;
  std::unique_ptr<KvStore> kv_;
};

}  // namespace cairn::mvcc::testing
