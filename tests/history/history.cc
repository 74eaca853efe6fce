#include "tests/history/history.h"

#include <chrono>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace cairn::history {
namespace {

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char* TypeName(Op::Type type) {
  switch (type) {
    case Op::Type::kRange:
      return "range";
    case Op::Type::kPut:
      return "put";
    case Op::Type::kDeleteRange:
      return "delete";
  }
  return "?";
}

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPending:
      return "pending";
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

std::string OpText(const Op& op) {
  std::string out = absl::StrCat(TypeName(op.type), "(", absl::CHexEscape(op.key));
  if (!op.range_end.empty()) absl::StrAppend(&out, "..", absl::CHexEscape(op.range_end));
  if (op.type == Op::Type::kPut) absl::StrAppend(&out, "=", absl::CHexEscape(op.value));
  if (op.revision != 0) absl::StrAppend(&out, " @", op.revision);
  if (op.limit != 0) absl::StrAppend(&out, " limit ", op.limit);
  return out + ")";
}

std::string KvText(const KeyValue& kv) {
  return absl::StrCat(absl::CHexEscape(kv.key), "=", absl::CHexEscape(kv.value), "{c",
                      kv.create_revision, " m", kv.mod_revision, " v", kv.version, "}");
}

}  // namespace

Request PutRequest(std::string key, std::string value) {
  Op op;
  op.type = Op::Type::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  Request request;
  request.success.push_back(std::move(op));
  return request;
}

Request RangeRequest(std::string key, std::string range_end, int64_t revision) {
  Op op;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  op.revision = revision;
  Request request;
  request.success.push_back(std::move(op));
  return request;
}

Request DeleteRequest(std::string key, std::string range_end) {
  Op op;
  op.type = Op::Type::kDeleteRange;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  Request request;
  request.success.push_back(std::move(op));
  return request;
}

bool MayWrite(const Request& request) {
  for (const auto* branch : {&request.success, &request.failure}) {
    for (const Op& op : *branch) {
      if (op.type != Op::Type::kRange) return true;
    }
  }
  return false;
}

bool InRange(const std::string& key, const std::string& begin, const std::string& range_end) {
  if (range_end.empty()) return key == begin;
  if (range_end == std::string(1, '\0')) return key >= begin;
  return key >= begin && key < range_end;
}

void WriteHistory(const History& history, std::ostream& out) {
  for (size_t i = 0; i < history.operations.size(); ++i) {
    const Operation& op = history.operations[i];
    out << "op " << i << " client " << op.client << " [" << op.invoke_ns << ", ";
    if (op.complete_ns == std::numeric_limits<int64_t>::max()) {
      out << "inf";
    } else {
      out << op.complete_ns;
    }
    out << "] " << OutcomeName(op.outcome) << " ";
    if (op.request.is_txn) {
      out << "txn(" << op.request.compares.size() << " cmps) then{";
      for (const Op& o : op.request.success) out << OpText(o) << " ";
      out << "} else{";
      for (const Op& o : op.request.failure) out << OpText(o) << " ";
      out << "}";
    } else {
      for (const Op& o : op.request.success) out << OpText(o);
    }
    if (op.outcome == Outcome::kOk) {
      out << " -> rev " << op.response.revision
          << (op.response.succeeded ? " succeeded" : " failed-cmp");
      for (const OpResponse& r : op.response.responses) {
        out << " [";
        for (const KeyValue& kv : r.kvs) out << KvText(kv) << " ";
        out << "count " << r.count << " deleted " << r.deleted << "]";
      }
    }
    out << "\n";
  }
  for (size_t w = 0; w < history.watchers.size(); ++w) {
    const Watcher& watcher = history.watchers[w];
    out << "watcher " << w << " " << absl::CHexEscape(watcher.key) << ".."
        << absl::CHexEscape(watcher.range_end) << "\n";
    for (const WatchStream& stream : watcher.streams) {
      out << "  stream from " << stream.start_revision << "\n";
      for (const WatchResponse& r : stream.responses) {
        out << "    rev " << r.revision << (r.created ? " created" : "")
            << (r.canceled ? " canceled" : "");
        if (r.compact_revision != 0) out << " compact " << r.compact_revision;
        for (const Event& e : r.events) {
          out << (e.type == Event::Type::kPut ? " PUT " : " DEL ") << KvText(e.kv);
        }
        out << "\n";
      }
    }
  }
}

Recorder::Recorder() : start_ns_(SteadyNs()) {}

int64_t Recorder::NowNs() const { return SteadyNs() - start_ns_; }

size_t Recorder::Invoke(int client, Request request) {
  Operation op;
  op.client = client;
  op.request = std::move(request);
  std::lock_guard<std::mutex> lock(mu_);
  op.invoke_ns = NowNs();
  history_.operations.push_back(std::move(op));
  return history_.operations.size() - 1;
}

void Recorder::Complete(size_t index, Outcome outcome, Response response) {
  const int64_t now = NowNs();
  std::lock_guard<std::mutex> lock(mu_);
  Operation& op = history_.operations.at(index);
  op.outcome = outcome;
  if (outcome == Outcome::kOk || outcome == Outcome::kFailed) op.complete_ns = now;
  if (outcome == Outcome::kOk) op.response = std::move(response);
}

size_t Recorder::AddWatcher(std::string key, std::string range_end) {
  std::lock_guard<std::mutex> lock(mu_);
  history_.watchers.push_back(
      {.key = std::move(key), .range_end = std::move(range_end), .streams = {}});
  return history_.watchers.size() - 1;
}

void Recorder::StartStream(size_t w, int64_t start_revision) {
  std::lock_guard<std::mutex> lock(mu_);
  history_.watchers.at(w).streams.push_back({.start_revision = start_revision, .responses = {}});
}

void Recorder::AddWatchResponse(size_t w, WatchResponse response) {
  std::lock_guard<std::mutex> lock(mu_);
  history_.watchers.at(w).streams.back().responses.push_back(std::move(response));
}

History Recorder::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  History copy = history_;
  for (Operation& op : copy.operations) {
    if (op.outcome == Outcome::kPending) op.outcome = Outcome::kUnknown;
  }
  return copy;
}

}  // namespace cairn::history
