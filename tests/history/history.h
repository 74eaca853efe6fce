// A history of client operations and watch events against an etcd v3 server, recorded by tests
// and checked by checker.h (the algorithm is in docs/history_checker.md).
//
// The types are plain structs, independent of gRPC and of the SDK, so any driver can fill them.
// Recorder is thread-safe: concurrent clients call Invoke / Complete and watchers call the
// watch methods from any thread.
#pragma once

#include <cstdint>
#include <limits>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace cairn::history {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

// One request inside a Txn branch, or a whole plain request.
struct Op {
  enum class Type { kRange, kPut, kDeleteRange };
  Type type = Type::kRange;
  std::string key;
  std::string range_end;  // "" = single key; "\0" (one NUL byte) = every key >= key.
  std::string value;      // kPut only.
  int64_t revision = 0;   // kRange only: 0 = latest.
  int64_t limit = 0;      // kRange only: 0 = no limit.
};

struct Compare {
  enum class Target { kValue, kVersion, kCreate, kMod };
  enum class Result { kEqual, kNotEqual, kLess, kGreater };
  Target target = Target::kValue;
  Result result = Result::kEqual;
  std::string key;
  int64_t number = 0;  // kVersion / kCreate / kMod.
  std::string value;   // kValue.
};

// A plain request is a Txn with no compares, one op in `success` and is_txn = false.
struct Request {
  bool is_txn = false;
  std::vector<Compare> compares;
  std::vector<Op> success;
  std::vector<Op> failure;
};

struct OpResponse {
  std::vector<KeyValue> kvs;  // kRange.
  int64_t count = 0;          // kRange.
  int64_t deleted = 0;        // kDeleteRange.
};

struct Response {
  int64_t revision = 0;  // header.revision.
  bool succeeded = true;
  std::vector<OpResponse> responses;  // One per op of the taken branch.
};

enum class Outcome { kPending, kOk, kFailed, kUnknown };

struct Operation {
  int client = 0;
  Request request;
  Outcome outcome = Outcome::kPending;
  Response response;  // Meaningful when outcome == kOk.
  int64_t invoke_ns = 0;
  int64_t complete_ns = std::numeric_limits<int64_t>::max();  // +inf unless kOk / kFailed.
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;
  friend bool operator==(const Event&, const Event&) = default;
};

struct WatchResponse {
  int64_t revision = 0;  // header.revision.
  std::vector<Event> events;
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;
};

// One watch stream: created with start_revision (> 0: the checker needs an explicit start).
struct WatchStream {
  int64_t start_revision = 0;
  std::vector<WatchResponse> responses;
};

struct Watcher {
  std::string key;
  std::string range_end;
  std::vector<WatchStream> streams;
};

struct History {
  std::vector<Operation> operations;
  std::vector<Watcher> watchers;
};

// Helpers to build requests.
Request PutRequest(std::string key, std::string value);
Request RangeRequest(std::string key, std::string range_end = "", int64_t revision = 0);
Request DeleteRequest(std::string key, std::string range_end = "");
// True when the request has a Put or DeleteRange in either branch.
bool MayWrite(const Request& request);
// True when `key` is inside [key, range_end) as etcd reads it.
bool InRange(const std::string& key, const std::string& begin, const std::string& range_end);

// Writes the history as readable text (one line per operation / watch response).
void WriteHistory(const History& history, std::ostream& out);

// Thread-safe recorder with a monotonic clock (nanoseconds from its construction).
class Recorder {
 public:
  Recorder();
  int64_t NowNs() const;
  // Records the invocation now and returns the operation's index.
  size_t Invoke(int client, Request request);
  // Records the completion now. `response` is used only for kOk.
  void Complete(size_t index, Outcome outcome, Response response = {});
  // Creates a watcher; returns its index.
  size_t AddWatcher(std::string key, std::string range_end);
  // Starts a new stream of watcher `w` at `start_revision`.
  void StartStream(size_t w, int64_t start_revision);
  // Appends a response to the current stream of watcher `w`.
  void AddWatchResponse(size_t w, WatchResponse response);
  // A copy of everything recorded so far. Pending operations are reported as kUnknown.
  History Snapshot() const;

 private:
  const int64_t start_ns_;
  mutable std::mutex mu_;
  History history_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cairn::history
