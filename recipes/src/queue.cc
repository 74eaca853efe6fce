#include "cairn/recipes/queue.h"

#include <cstdio>
#include <mutex>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "src/internal.h"

namespace cairn::recipes {

namespace {

constexpr int kMaxEnqueueAttempts = 16;

std::string PriorityPart(int priority) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%05d", priority);
  return buf;
}

}  // namespace

absl::StatusOr<std::string> Queue::Enqueue(const std::string& value, int priority,
                                           const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) return st;
  if (priority < 0 || priority > kQueueMaxPriority) {
    return absl::InvalidArgumentError("queue: priority out of [0, 65535]");
  }
  Clock::time_point deadline = internal::DeadlineOf(call);
  CallOptions rpc = internal::RpcCall(call, deadline);
  static absl::BitGen* gen = new absl::BitGen();
  static std::mutex* gen_mu = new std::mutex();
  for (int attempt = 0; attempt < kMaxEnqueueAttempts; ++attempt) {
    uint64_t r;
    {
      std::lock_guard<std::mutex> lock(*gen_mu);
      r = absl::Uniform<uint64_t>(*gen);
    }
    char suffix[40];
    std::snprintf(suffix, sizeof(suffix), "%016llx%016llx",
                  static_cast<unsigned long long>(Clock::now().time_since_epoch().count()),
                  static_cast<unsigned long long>(r));
    std::string key = name_ + "/" + PriorityPart(priority) + "/" + suffix;
    Txn t;
    t.If({Cmp::CreateRevision(key) == 0}).Then({Op::Put(key, value)});
    auto resp = kv_.Commit(t, rpc);
    if (!resp.ok()) return resp.status();
    if (resp->succeeded) return key;
  }
  return absl::AbortedError("queue: could not find a free item key");
}

absl::StatusOr<std::optional<QueueItem>> Queue::TakeOnce(const CallOptions& rpc,
                                                         Revision* revision) const {
  const std::string prefix = name_ + "/";
  while (true) {
    GetOptions lowest;
    lowest.prefix = true;
    lowest.sort_target = SortTarget::kKey;
    lowest.sort_order = SortOrder::kAscend;
    lowest.limit = 1;
    lowest.keys_only = true;
    auto first = kv_.Get(prefix, lowest, rpc);
    if (!first.ok()) return first.status();
    *revision = first->header.revision;
    if (first->kvs.empty()) return std::optional<QueueItem>();
    // "<name>/<ppppp>/...": the oldest item of the lowest priority present.
    const std::string& k = first->kvs[0].key;
    size_t slash = k.find('/', prefix.size());
    if (slash == std::string::npos) {
      return absl::FailedPreconditionError("queue: foreign key under the queue prefix: " + k);
    }
    std::string bucket = k.substr(0, slash + 1);
    int priority = 0;
    (void)absl::SimpleAtoi(k.substr(prefix.size(), slash - prefix.size()), &priority);
    auto oldest = kv_.Get(bucket, internal::ByCreate(true), rpc);
    if (!oldest.ok()) return oldest.status();
    if (oldest->kvs.empty()) continue;  // taken meanwhile
    const KeyValue& item = oldest->kvs[0];
    Txn t;
    t.If({Cmp::CreateRevision(item.key) == item.create_revision}).Then({Op::Delete(item.key)});
    auto r = kv_.Commit(t, rpc);
    if (!r.ok()) return r.status();
    if (!r->succeeded) continue;  // another consumer took it
    QueueItem out;
    out.key = item.key;
    out.value = item.value;
    out.priority = priority;
    out.create_revision = item.create_revision;
    return std::optional<QueueItem>(std::move(out));
  }
}

absl::StatusOr<std::optional<QueueItem>> Queue::TryDequeue(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) return st;
  Revision rev = 0;
  return TakeOnce(internal::RpcCall(call, internal::DeadlineOf(call)), &rev);
}

absl::StatusOr<QueueItem> Queue::Dequeue(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) return st;
  Clock::time_point deadline = internal::DeadlineOf(call);
  CallOptions rpc = internal::RpcCall(call, deadline);
  while (true) {
    Revision rev = 0;
    auto got = TakeOnce(rpc, &rev);
    if (!got.ok()) return got.status();
    if (got->has_value()) return std::move(**got);
    WatchOptions wo;
    wo.prefix = true;
    wo.start_revision = rev + 1;
    wo.filter_delete = true;
    absl::Status st = internal::WaitForChange(watch_, name_ + "/", wo, call, deadline, nullptr);
    if (!st.ok()) return st;
  }
}

absl::StatusOr<int64_t> Queue::Size(const CallOptions& call) const { return SizeAsync(call).Get(); }

Future<int64_t> Queue::SizeAsync(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) {
    return MakeReadyFuture<int64_t>(st);
  }
  GetOptions go;
  go.prefix = true;
  go.count_only = true;
  return internal::Map<GetResponse, int64_t>(
      kv_.GetAsync(name_ + "/", go, call),
      [](absl::StatusOr<GetResponse> r) -> absl::StatusOr<int64_t> {
        if (!r.ok()) return r.status();
        return r->count;
      });
}

}  // namespace cairn::recipes
