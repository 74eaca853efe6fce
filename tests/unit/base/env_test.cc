#include "server/base/env.h"

#include <stdlib.h>

#include <algorithm>
#include <string>

#include "gtest/gtest.h"
#include "server/base/fault_injection_env.h"

namespace cairn::base {
namespace {

// A fresh directory under the test's temporary directory.
std::string MakeTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string templ = std::string(base != nullptr ? base : "/tmp") + "/cairn_wal_env_XXXXXX";
  char* dir = ::mkdtemp(templ.data());
  EXPECT_NE(dir, nullptr);
  return templ;
}

void RemoveTree(Env* env, const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = env->ListDir(dir);
  if (names.ok()) {
    for (const std::string& name : *names) (void)env->RemoveFile(JoinPath(dir, name));
  }
  ::rmdir(dir.c_str());
}

TEST(PosixEnvTest, WriteReadPreallocateTruncateRenameList) {
  Env* env = Env::Default();
  const std::string dir = MakeTempDir();
  const std::string a = JoinPath(dir, "a");
  {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = env->NewWritableFile(a);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Preallocate(64).ok());
    EXPECT_EQ((*file)->position(), 0u);
    ASSERT_TRUE((*file)->Append("hello").ok());
    ASSERT_TRUE((*file)->Append(" world").ok());
    EXPECT_EQ((*file)->position(), 11u);
    ASSERT_TRUE((*file)->Sync().ok());
  }
  std::string contents;
  ASSERT_TRUE(env->ReadFile(a, &contents).ok());
  EXPECT_EQ(contents, std::string("hello world") + std::string(53, '\0'));

  {
    absl::StatusOr<std::unique_ptr<WritableFile>> file = env->ReopenWritableFile(a);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Truncate(5).ok());
    EXPECT_EQ((*file)->position(), 5u);
    ASSERT_TRUE((*file)->Append("!").ok());
    ASSERT_TRUE((*file)->Sync().ok());
  }
  ASSERT_TRUE(env->ReadFile(a, &contents).ok());
  EXPECT_EQ(contents, "hello!");

  const std::string b = JoinPath(dir, "b");
  ASSERT_TRUE(env->RenameFile(a, b).ok());
  ASSERT_TRUE(env->SyncDir(dir).ok());
  EXPECT_FALSE(env->FileExists(a));
  EXPECT_TRUE(env->FileExists(b));
  absl::StatusOr<std::vector<std::string>> names = env->ListDir(dir);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"b"});

  EXPECT_EQ(env->ReadFile(a, &contents).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(env->ReopenWritableFile(a).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(env->RemoveFile(b).ok());
  EXPECT_FALSE(env->FileExists(b));
  RemoveTree(env, dir);
}

// What the snapshot code needs of any Env: nested directories, sizes, front-to-back reads.
void CheckDirsSizesAndSequentialReads(Env* env, const std::string& root) {
  const std::string dir = JoinPath(root, "x/y/z");
  ASSERT_TRUE(env->CreateDirs(dir).ok());
  ASSERT_TRUE(env->CreateDirs(dir).ok());  // already there: OK
  EXPECT_TRUE(env->FileExists(JoinPath(root, "x/y")));
  const std::string f = JoinPath(dir, "f");
  EXPECT_EQ(env->GetFileSize(f).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(env->NewSequentialFile(f).status().code(), absl::StatusCode::kNotFound);
  {
    auto file = env->NewWritableFile(f);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append("0123456789").ok());
  }
  absl::StatusOr<uint64_t> size = env->GetFileSize(f);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, 10u);
  auto reader = env->NewSequentialFile(f);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::string got = "junk";
  ASSERT_TRUE((*reader)->Read(4, &got).ok());
  EXPECT_EQ(got, "0123");
  ASSERT_TRUE((*reader)->Read(100, &got).ok());
  EXPECT_EQ(got, "456789");
  ASSERT_TRUE((*reader)->Read(100, &got).ok());
  EXPECT_EQ(got, "");  // end of file
  ASSERT_TRUE(env->RemoveFile(f).ok());
}

TEST(PosixEnvTest, DirsSizesAndSequentialReads) {
  const std::string root = MakeTempDir();
  CheckDirsSizesAndSequentialReads(Env::Default(), root);
  for (const char* level : {"x/y/z", "x/y", "x"}) ::rmdir(JoinPath(root, level).c_str());
  ::rmdir(root.c_str());
}

TEST(FaultInjectionEnvTest, DirsSizesAndSequentialReads) {
  FaultInjectionEnv env(1);
  CheckDirsSizesAndSequentialReads(&env, "/r");
}

TEST(FaultInjectionEnvTest, ReadersSeeUnsyncedBytesUntilACrashDropsThem) {
  FaultInjectionEnv env(1);
  ASSERT_TRUE(env.CreateDir("/d").ok());
  auto file = *env.NewWritableFile("/d/f");
  ASSERT_TRUE(env.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append("durable").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append("+lost").ok());
  EXPECT_EQ(*env.GetFileSize("/d/f"), 12u);
  auto reader = *env.NewSequentialFile("/d/f");
  std::string got;
  ASSERT_TRUE(reader->Read(100, &got).ok());
  EXPECT_EQ(got, "durable+lost");

  env.SimulateCrash(FaultInjectionEnv::CrashMode::kDropUnsynced);
  EXPECT_EQ(reader->Read(1, &got).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*env.GetFileSize("/d/f"), 7u);
  auto after = *env.NewSequentialFile("/d/f");
  ASSERT_TRUE(after->Read(100, &got).ok());
  EXPECT_EQ(got, "durable");
}

TEST(FaultInjectionEnvTest, SyncedBytesSurviveUnsyncedAreDropped) {
  FaultInjectionEnv env(1);
  ASSERT_TRUE(env.CreateDir("/d").ok());
  auto file = *env.NewWritableFile("/d/f");
  ASSERT_TRUE(env.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append("durable").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append("-lost").ok());
  EXPECT_EQ(env.UnsyncedBytes("/d/f"), 5u);
  std::string contents;
  ASSERT_TRUE(env.ReadFile("/d/f", &contents).ok());
  EXPECT_EQ(contents, "durable-lost");

  env.SimulateCrash(FaultInjectionEnv::CrashMode::kDropUnsynced);
  ASSERT_TRUE(env.ReadFile("/d/f", &contents).ok());
  EXPECT_EQ(contents, "durable");
  // The handle belongs to the crashed process.
  EXPECT_EQ(file->Append("x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(file->Sync().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(FaultInjectionEnvTest, DirectoryChangesNeedSyncDir) {
  FaultInjectionEnv env(1);
  ASSERT_TRUE(env.CreateDir("/d").ok());
  {
    auto f = *env.NewWritableFile("/d/kept");
    ASSERT_TRUE(f->Sync().ok());
  }
  ASSERT_TRUE(env.SyncDir("/d").ok());
  {
    auto f = *env.NewWritableFile("/d/new");
    ASSERT_TRUE(f->Append("x").ok());
    ASSERT_TRUE(f->Sync().ok());
  }
  ASSERT_TRUE(env.RemoveFile("/d/kept").ok());
  EXPECT_FALSE(env.FileExists("/d/kept"));
  env.SimulateCrash(FaultInjectionEnv::CrashMode::kDropUnsynced);
  EXPECT_TRUE(env.FileExists("/d/kept"));  // the removal was never made durable
  EXPECT_FALSE(env.FileExists("/d/new"));  // nor the creation
  EXPECT_EQ(env.dir_sync_count(), 1u);
}

TEST(FaultInjectionEnvTest, RenameIsAtomicAndDurableAfterSyncDir) {
  FaultInjectionEnv env(1);
  ASSERT_TRUE(env.CreateDir("/d").ok());
  {
    auto f = *env.NewWritableFile("/d/a.tmp");
    ASSERT_TRUE(f->Append("payload").ok());
    ASSERT_TRUE(f->Sync().ok());
  }
  ASSERT_TRUE(env.RenameFile("/d/a.tmp", "/d/a").ok());
  ASSERT_TRUE(env.SyncDir("/d").ok());
  env.SimulateCrash(FaultInjectionEnv::CrashMode::kTornWrites);
  std::string contents;
  ASSERT_TRUE(env.ReadFile("/d/a", &contents).ok());
  EXPECT_EQ(contents, "payload");
  EXPECT_FALSE(env.FileExists("/d/a.tmp"));
}

TEST(FaultInjectionEnvTest, TornCrashKeepsAPrefixOfUnsyncedWrites) {
  const std::string durable = "0123456789";
  const std::string unsynced = "abcdefghijklmnopqrstuvwxyz";
  bool saw_partial = false, saw_none = false;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    FaultInjectionEnv env(seed);
    ASSERT_TRUE(env.CreateDir("/d").ok());
    auto f = *env.NewWritableFile("/d/f");
    ASSERT_TRUE(env.SyncDir("/d").ok());
    ASSERT_TRUE(f->Preallocate(64).ok());
    ASSERT_TRUE(f->Append(durable).ok());
    ASSERT_TRUE(f->Sync().ok());
    ASSERT_TRUE(f->Append(unsynced.substr(0, 10)).ok());
    ASSERT_TRUE(f->Append(unsynced.substr(10)).ok());
    env.SimulateCrash(FaultInjectionEnv::CrashMode::kTornWrites);
    std::string contents;
    ASSERT_TRUE(env.ReadFile("/d/f", &contents).ok());
    ASSERT_EQ(contents.size(), 64u);
    ASSERT_EQ(contents.substr(0, durable.size()), durable);
    std::string rest = contents.substr(durable.size());
    size_t kept = 0;
    while (kept < unsynced.size() && rest[kept] == unsynced[kept]) ++kept;
    EXPECT_EQ(rest.substr(kept), std::string(rest.size() - kept, '\0')) << "seed " << seed;
    saw_partial |= kept > 0 && kept < unsynced.size();
    saw_none |= kept == 0;
  }
  EXPECT_TRUE(saw_partial);
  EXPECT_TRUE(saw_none);
}

TEST(FaultInjectionEnvTest, CorruptByteAndInjectedErrors) {
  FaultInjectionEnv env(1);
  ASSERT_TRUE(env.CreateDir("/d").ok());
  auto f = *env.NewWritableFile("/d/f");
  ASSERT_TRUE(f->Append("abc").ok());
  ASSERT_TRUE(f->Sync().ok());
  ASSERT_TRUE(env.SyncDir("/d").ok());
  ASSERT_TRUE(env.CorruptByte("/d/f", 1, 0x01).ok());
  EXPECT_EQ(env.CorruptByte("/d/f", 3, 0x01).code(), absl::StatusCode::kOutOfRange);
  env.SimulateCrash(FaultInjectionEnv::CrashMode::kDropUnsynced);
  std::string contents;
  ASSERT_TRUE(env.ReadFile("/d/f", &contents).ok());
  EXPECT_EQ(contents, "acc");  // 'b' ^ 1 == 'c', and the flip is durable

  auto g = *env.ReopenWritableFile("/d/f");
  env.set_fail_writes(true);
  EXPECT_EQ(g->Append("x").code(), absl::StatusCode::kInternal);
  env.set_fail_writes(false);
  env.set_fail_syncs(true);
  ASSERT_TRUE(g->Append("x").ok());
  EXPECT_EQ(g->Sync().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(env.SyncDir("/d").code(), absl::StatusCode::kInternal);
  uint64_t syncs = env.file_sync_count();
  env.set_fail_syncs(false);
  ASSERT_TRUE(g->Sync().ok());
  EXPECT_EQ(env.file_sync_count(), syncs + 1);
}

}  // namespace
}  // namespace cairn::base
