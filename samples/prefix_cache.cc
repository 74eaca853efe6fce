// Sample: a local, watch-maintained copy of a prefix (e.g. configuration) with a change listener.
// Reads are served from memory; the cache resyncs by itself after compaction.
//   prefix_cache <prefix> [endpoint]
#include <iostream>
#include <string>

#include "cairn/client.h"
#include "cairn/recipes/prefix_cache.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: prefix_cache <prefix> [endpoint]\n";
    return 2;
  }
  const std::string prefix = argv[1];
  cairn::ClientOptions options;
  options.endpoints.push_back(argc > 2 ? argv[2] : "127.0.0.1:2379");
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) {
    std::cerr << "connect: " << client.status() << "\n";
    return 1;
  }
  auto cache = cairn::recipes::PrefixCache::Start(**client, prefix);
  if (!cache.ok()) {
    std::cerr << "cache: " << cache.status() << "\n";
    return 1;
  }
  (*cache)->AddListener([](const std::vector<cairn::Event>& events, cairn::Revision rev, bool) {
    for (const auto& e : events) {
      std::cout << "rev " << rev << ": " << (e.type == cairn::EventType::kPut ? "put " : "delete ")
                << e.kv.key << (e.type == cairn::EventType::kPut ? " = " + e.kv.value : "")
                << std::endl;
    }
  });
  // Someone changes the configuration.
  const cairn::Kv& kv = (*client)->kv();
  (void)kv.Put(prefix + "log_level", "info");
  (void)kv.Put(prefix + "max_conns", "100");
  (void)kv.Put(prefix + "log_level", "debug");
  auto last = kv.Delete(prefix + "max_conns");
  if (!last.ok()) {
    std::cerr << "delete: " << last.status() << "\n";
    return 1;
  }
  // Wait until the cache has caught up with our last write, then read from memory.
  cairn::CallOptions bound;
  bound.timeout = std::chrono::seconds(30);
  if (auto st = (*cache)->WaitForRevision(last->header.revision, bound); !st.ok()) {
    std::cerr << "wait: " << st << "\n";
    return 1;
  }
  auto level = (*cache)->Get(prefix + "log_level");
  std::cout << "cached " << (*cache)->size()
            << " key(s); log_level = " << (level ? level->value : "(none)") << "\n";
  return level && level->value == "debug" && (*cache)->size() == 1 ? 0 : 1;
}
