#include "cairn/recipes/queue.h"

#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "src/async_acquire.h"
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

namespace {

// One Dequeue (wait) or TryDequeue (!wait), without a blocked thread: read the lowest key, then
// the oldest item of its priority, take it with a Txn guarded by its create revision (another
// consumer may win: look again); with `wait`, an empty queue is watched for the next put.
class Taking : public std::enable_shared_from_this<Taking> {
 public:
  using Result = std::optional<QueueItem>;

  Taking(Kv kv, WatchClient watch, const std::string& name, bool wait)
      : kv_(std::move(kv)), watch_(std::move(watch)), prefix_(name + "/"), wait_(wait) {}

  Future<Result> Start(const CallOptions& call) {
    Future<Result> f = promise_.future();
    call_ = internal::OwnCall(call, promise_, &unlink_);
    rpc_ = internal::RpcCall(call_, call_.deadline);
    Look();
    return f;
  }

 private:
  void Look() {
    GetOptions lowest;
    lowest.prefix = true;
    lowest.sort_target = SortTarget::kKey;
    lowest.sort_order = SortOrder::kAscend;
    lowest.limit = 1;
    lowest.keys_only = true;
    auto self = shared_from_this();
    kv_.GetAsync(prefix_, lowest, rpc_).Then([self](absl::StatusOr<GetResponse> r) {
      self->OnLowest(std::move(r));
    });
  }

  void OnLowest(absl::StatusOr<GetResponse> first) {
    if (!first.ok()) return Done(first.status());
    if (first->kvs.empty()) {
      if (!wait_) return Done(Result());
      return Wait(first->header.revision);
    }
    // "<name>/<ppppp>/...": the oldest item of the lowest priority present.
    const std::string& k = first->kvs[0].key;
    size_t slash = k.find('/', prefix_.size());
    if (slash == std::string::npos) {
      return Done(absl::FailedPreconditionError("queue: foreign key under the queue prefix: " + k));
    }
    int priority = 0;
    (void)absl::SimpleAtoi(k.substr(prefix_.size(), slash - prefix_.size()), &priority);
    auto self = shared_from_this();
    kv_.GetAsync(k.substr(0, slash + 1), internal::ByCreate(true), rpc_)
        .Then([self, priority](absl::StatusOr<GetResponse> r) {
          self->OnOldest(std::move(r), priority);
        });
  }

  void OnOldest(absl::StatusOr<GetResponse> oldest, int priority) {
    if (!oldest.ok()) return Done(oldest.status());
    if (oldest->kvs.empty()) return Look();  // taken meanwhile
    auto item = std::make_shared<QueueItem>();
    item->key = oldest->kvs[0].key;
    item->value = oldest->kvs[0].value;
    item->priority = priority;
    item->create_revision = oldest->kvs[0].create_revision;
    Txn t;
    t.If({Cmp::CreateRevision(item->key) == item->create_revision}).Then({Op::Delete(item->key)});
    // Not interrupted by the cancel token (only by the deadline): a take canceled after it
    // reached the server would delete the item without handing it to anyone.
    CallOptions take = rpc_;
    take.cancel = CancelToken();
    auto self = shared_from_this();
    kv_.CommitAsync(t, take).Then([self, item](absl::StatusOr<TxnResponse> r) {
      if (!r.ok()) return self->Done(r.status());
      if (!r->succeeded) return self->Look();  // another consumer took it
      self->Done(Result(std::move(*item)));
    });
  }

  // Empty at `revision`: wait for a put under the prefix after it, then look again.
  void Wait(Revision revision) {
    WatchOptions wo;
    wo.prefix = true;
    wo.start_revision = revision + 1;
    wo.filter_delete = true;
    auto self = shared_from_this();
    internal::WaitForChangeAsync(watch_, prefix_, wo, call_, call_.deadline, nullptr)
        .Then([self](absl::StatusOr<bool> w) {
          if (!w.ok()) return self->Done(w.status());
          self->Look();
        });
  }

  void Done(absl::StatusOr<Result> r) {
    unlink_();
    promise_.Set(std::move(r));
  }

  const Kv kv_;
  const WatchClient watch_;
  const std::string prefix_;
  const bool wait_;
  Promise<Result> promise_;
  std::function<void()> unlink_ = [] {};
  CallOptions call_;
  CallOptions rpc_;
};

}  // namespace

absl::StatusOr<std::optional<QueueItem>> Queue::TryDequeue(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) return st;
  return std::make_shared<Taking>(kv_, watch_, name_, /*wait=*/false)->Start(call).Get();
}

absl::StatusOr<QueueItem> Queue::Dequeue(const CallOptions& call) const {
  return DequeueAsync(call).Get();
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

absl::StatusOr<std::optional<ClaimedItem>> Queue::ClaimOnce(const Session& session,
                                                            const CallOptions& rpc,
                                                            Revision* revision) const {
  const std::string prefix = name_ + "/";
  const std::string cprefix = name_ + "!claim/";
  while (true) {
    GetOptions all_claims;
    all_claims.prefix = true;
    all_claims.keys_only = true;
    auto claims = kv_.Get(cprefix, all_claims, rpc);
    if (!claims.ok()) return claims.status();
    *revision = claims->header.revision;
    std::set<std::string> claimed;  // item keys
    for (const auto& c : claims->kvs) claimed.insert(prefix + c.key.substr(cprefix.size()));
    std::string from = prefix;
    std::optional<KeyValue> candidate;
    while (!candidate.has_value()) {
      // The lowest priority bucket at or after `from`.
      GetOptions lowest;
      lowest.range_end = PrefixEnd(prefix);
      lowest.sort_target = SortTarget::kKey;
      lowest.sort_order = SortOrder::kAscend;
      lowest.limit = 1;
      lowest.keys_only = true;
      auto first = kv_.Get(from, lowest, rpc);
      if (!first.ok()) return first.status();
      if (first->kvs.empty()) return std::optional<ClaimedItem>();
      const std::string& k = first->kvs[0].key;
      size_t slash = k.find('/', prefix.size());
      if (slash == std::string::npos) {
        return absl::FailedPreconditionError("queue: foreign key under the queue prefix: " + k);
      }
      std::string bucket = k.substr(0, slash + 1);
      int64_t claimed_here = 0;
      for (auto it = claimed.lower_bound(bucket);
           it != claimed.end() && it->compare(0, bucket.size(), bucket) == 0; ++it) {
        ++claimed_here;
      }
      GetOptions oldest = internal::ByCreate(true);
      oldest.limit = claimed_here + 1;  // at least one of them is unclaimed, if the bucket has it
      oldest.keys_only = true;
      auto items = kv_.Get(bucket, oldest, rpc);
      if (!items.ok()) return items.status();
      for (const auto& kv : items->kvs) {
        if (!claimed.count(kv.key)) {
          candidate = kv;
          break;
        }
      }
      if (!candidate.has_value()) from = PrefixEnd(bucket);
    }
    const std::string claim = cprefix + candidate->key.substr(prefix.size());
    PutOptions po;
    po.lease = session.lease();
    Txn t;
    t.If({Cmp::CreateRevision(candidate->key) == candidate->create_revision,
          Cmp::CreateRevision(claim) == 0})
        .Then({Op::Put(claim, "", po), Op::Get(candidate->key)});
    auto r = kv_.Commit(t, rpc);
    if (!r.ok()) return r.status();
    if (!r->succeeded) continue;  // taken or claimed meanwhile: look again
    if (r->responses.size() != 2 || r->responses[1].get.kvs.empty()) {
      return absl::InternalError("queue: unexpected claim txn response");
    }
    const KeyValue& item = r->responses[1].get.kvs[0];
    ClaimedItem out;
    out.item.key = item.key;
    out.item.value = item.value;
    out.item.create_revision = item.create_revision;
    size_t slash = item.key.find('/', prefix.size());
    (void)absl::SimpleAtoi(item.key.substr(prefix.size(), slash - prefix.size()),
                           &out.item.priority);
    out.claim_key = claim;
    out.claim_revision = r->header.revision;
    return std::optional<ClaimedItem>(std::move(out));
  }
}

absl::StatusOr<std::optional<ClaimedItem>> Queue::TryClaim(const Session& session,
                                                           const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) return st;
  if (absl::Status st = internal::CheckSession(session); !st.ok()) return st;
  Revision rev = 0;
  return ClaimOnce(session, internal::RpcCall(call, internal::DeadlineOf(call)), &rev);
}

absl::StatusOr<ClaimedItem> Queue::Claim(const Session& session, const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) return st;
  Clock::time_point deadline = internal::DeadlineOf(call);
  CallOptions rpc = internal::RpcCall(call, deadline);
  while (true) {
    if (absl::Status st = internal::CheckSession(session); !st.ok()) return st;
    Revision rev = 0;
    auto got = ClaimOnce(session, rpc, &rev);
    if (!got.ok()) return got.status();
    if (got->has_value()) return std::move(**got);
    // Wait for any change to items or claims after the claims were read.
    WatchOptions wo;
    wo.range_end = PrefixEnd(name_ + "/");
    wo.start_revision = rev + 1;
    absl::Status st =
        internal::WaitForChange(watch_, name_ + "!claim/", wo, call, deadline, &session);
    if (!st.ok()) return st;
  }
}

absl::Status Queue::EndClaim(const ClaimedItem& claimed, bool ack, const CallOptions& call) const {
  Txn t;
  std::vector<Op> ops = {Op::Delete(claimed.claim_key)};
  if (ack) ops.push_back(Op::Delete(claimed.item.key));
  t.If({Cmp::CreateRevision(claimed.claim_key) == claimed.claim_revision}).Then(std::move(ops));
  auto r = kv_.Commit(t, call);
  if (!r.ok()) return r.status();
  if (!r->succeeded) return absl::FailedPreconditionError("queue: claim lost (session ended?)");
  return absl::OkStatus();
}

absl::Status Queue::Ack(const ClaimedItem& claimed, const CallOptions& call) const {
  return EndClaim(claimed, true, call);
}

absl::Status Queue::Release(const ClaimedItem& claimed, const CallOptions& call) const {
  return EndClaim(claimed, false, call);
}

Future<QueueItem> Queue::DequeueAsync(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) {
    return MakeReadyFuture<QueueItem>(st);
  }
  auto t = std::make_shared<Taking>(kv_, watch_, name_, /*wait=*/true);
  return internal::Map<std::optional<QueueItem>, QueueItem>(
      t->Start(call), [](absl::StatusOr<std::optional<QueueItem>> r) -> absl::StatusOr<QueueItem> {
        if (!r.ok()) return r.status();
        if (!r->has_value()) return absl::InternalError("queue: wait ended without an item");
        return std::move(**r);
      });
}

Future<ClaimedItem> Queue::ClaimAsync(const Session& session, const CallOptions& call) const {
  return RunAsync<ClaimedItem>(
      call, [this, &session](const CallOptions& c) { return Claim(session, c); });
}

}  // namespace cairn::recipes
