// The snapshot reader over corrupted files (storage::VerifySnapshotFile, ReadSnapshotMetaInt),
// through the in-memory FaultInjectionEnv (no disk I/O).
#include "server/base/crc32c.h"
#include "server/base/fault_injection_env.h"
#include "server/storage/snapshot.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cairn::base::FaultInjectionEnv env;
  if (!env.CreateDir("/snap").ok()) return 0;
  auto file = env.NewWritableFile("/snap/f");
  if (!file.ok() ||
      !(*file)->Append(std::string_view(reinterpret_cast<const char*>(data), size)).ok())
    return 0;
  (void)cairn::storage::VerifySnapshotFile("/snap/f", &env);
  (void)cairn::storage::ReadSnapshotMetaInt("/snap/f", "applied_index", -1, &env);
  return 0;
}

namespace {

void Be(uint64_t v, int bytes, std::string* out) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

// A valid file (docs/snapshot_format.md, "Byte layout") with two records.
std::vector<std::string> FuzzSeeds() {
  std::string f = "CAIRNSNP";
  Be(1, 4, &f);
  const std::pair<std::string, std::string> records[] = {
      {"applied_index", std::string(7, '\0') + "\x05"}, {"k", "value"}};
  int cf = 0;
  for (const auto& [key, value] : records) {
    f.push_back(static_cast<char>(cf++));
    Be(key.size(), 4, &f);
    Be(value.size(), 4, &f);
    f += key;
    f += value;
  }
  f.push_back('\xff');
  Be(2, 8, &f);
  Be(cairn::base::crc32c::Value(f), 4, &f);
  return {f};
}
