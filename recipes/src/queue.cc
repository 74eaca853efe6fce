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

namespace {

// One item key of priority `priority`, unique with overwhelming probability.
std::string ItemKey(const std::string& name, int priority) {
  static absl::BitGen* gen = new absl::BitGen();
  static std::mutex* gen_mu = new std::mutex();
  uint64_t r;
  {
    std::lock_guard<std::mutex> lock(*gen_mu);
    r = absl::Uniform<uint64_t>(*gen);
  }
  char suffix[40];
  std::snprintf(suffix, sizeof(suffix), "%016llx%016llx",
                static_cast<unsigned long long>(Clock::now().time_since_epoch().count()),
                static_cast<unsigned long long>(r));
  return name + "/" + PriorityPart(priority) + "/" + suffix;
}

// EnqueueAsync's attempts: put a fresh item key unless it exists; another key on a collision.
void EnqueueAttempt(Kv kv, std::string name, std::string value, int priority, CallOptions rpc,
                    int attempt, Promise<std::string> done) {
  if (attempt >= kMaxEnqueueAttempts) {
    return done.Set(absl::AbortedError("queue: could not find a free item key"));
  }
  std::string key = ItemKey(name, priority);
  Txn t;
  t.If({Cmp::CreateRevision(key) == 0}).Then({Op::Put(key, value)});
  Kv handle = kv;
  handle.CommitAsync(t, rpc).Then([kv = std::move(kv), name = std::move(name),
                                   value = std::move(value), priority, rpc, attempt, done,
                                   key](absl::StatusOr<TxnResponse> r) mutable {
    if (!r.ok()) return done.Set(r.status());
    if (r->succeeded) return done.Set(key);
    EnqueueAttempt(std::move(kv), std::move(name), std::move(value), priority, rpc, attempt + 1,
                   done);
  });
}

}  // namespace

Future<std::string> Queue::EnqueueAsync(const std::string& value, int priority,
                                        const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) {
    return MakeReadyFuture<std::string>(st);
  }
  if (priority < 0 || priority > kQueueMaxPriority) {
    return MakeReadyFuture<std::string>(
        absl::InvalidArgumentError("queue: priority out of [0, 65535]"));
  }
  Promise<std::string> done;
  Future<std::string> f = done.future();
  EnqueueAttempt(kv_, name_, value, priority, internal::RpcCall(call, internal::DeadlineOf(call)),
                 0, std::move(done));
  return f;
}

absl::StatusOr<std::string> Queue::Enqueue(const std::string& value, int priority,
                                           const CallOptions& call) const {
  return EnqueueAsync(value, priority, call).Get();
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

// One Claim (wait) or TryClaim (!wait), without a blocked thread: read the claims, then, bucket
// by bucket (lowest priority first), the oldest items until one is unclaimed; claim it with a Txn
// guarded by its create revision and the claim key's absence (another consumer may win: look
// again). With `wait`, nothing claimable is a watch of items and claims from the revision the
// claims were read at.
class Claiming : public std::enable_shared_from_this<Claiming> {
 public:
  using Result = std::optional<ClaimedItem>;

  Claiming(Kv kv, WatchClient watch, const std::string& name,
           std::shared_ptr<const Session> session, bool wait)
      : kv_(std::move(kv)),
        watch_(std::move(watch)),
        prefix_(name + "/"),
        cprefix_(name + "!claim/"),
        session_(std::move(session)),
        wait_(wait) {}

  Future<Result> Start(const CallOptions& call) {
    Future<Result> f = promise_.future();
    call_ = internal::OwnCall(call, promise_, &unlink_);
    rpc_ = internal::RpcCall(call_, call_.deadline);
    Look();
    return f;
  }

 private:
  // A new attempt: every claim of the queue first.
  void Look() {
    if (absl::Status st = internal::CheckSession(*session_); !st.ok()) return Done(st);
    GetOptions all;
    all.prefix = true;
    all.keys_only = true;
    auto self = shared_from_this();
    kv_.GetAsync(cprefix_, all, rpc_).Then([self](absl::StatusOr<GetResponse> r) {
      self->OnClaims(std::move(r));
    });
  }

  void OnClaims(absl::StatusOr<GetResponse> claims) {
    if (!claims.ok()) return Done(claims.status());
    revision_ = claims->header.revision;
    claimed_.clear();
    for (const auto& c : claims->kvs) claimed_.insert(prefix_ + c.key.substr(cprefix_.size()));
    NextBucket(prefix_);
  }

  // The lowest priority bucket at or after `from`.
  void NextBucket(const std::string& from) {
    GetOptions lowest;
    lowest.range_end = PrefixEnd(prefix_);
    lowest.sort_target = SortTarget::kKey;
    lowest.sort_order = SortOrder::kAscend;
    lowest.limit = 1;
    lowest.keys_only = true;
    auto self = shared_from_this();
    kv_.GetAsync(from, lowest, rpc_).Then([self](absl::StatusOr<GetResponse> r) {
      self->OnBucket(std::move(r));
    });
  }

  void OnBucket(absl::StatusOr<GetResponse> first) {
    if (!first.ok()) return Done(first.status());
    if (first->kvs.empty()) return wait_ ? Wait() : Done(Result());
    const std::string& k = first->kvs[0].key;
    size_t slash = k.find('/', prefix_.size());
    if (slash == std::string::npos) {
      return Done(absl::FailedPreconditionError("queue: foreign key under the queue prefix: " + k));
    }
    std::string bucket = k.substr(0, slash + 1);
    int64_t claimed_here = 0;
    for (auto it = claimed_.lower_bound(bucket);
         it != claimed_.end() && it->compare(0, bucket.size(), bucket) == 0; ++it) {
      ++claimed_here;
    }
    GetOptions oldest = internal::ByCreate(true);
    oldest.limit = claimed_here + 1;  // at least one of them is unclaimed, if the bucket has it
    oldest.keys_only = true;
    auto self = shared_from_this();
    kv_.GetAsync(bucket, oldest, rpc_).Then([self, bucket](absl::StatusOr<GetResponse> r) {
      self->OnItems(std::move(r), bucket);
    });
  }

  void OnItems(absl::StatusOr<GetResponse> items, const std::string& bucket) {
    if (!items.ok()) return Done(items.status());
    for (const auto& kv : items->kvs) {
      if (!claimed_.count(kv.key)) return Take(kv);
    }
    NextBucket(PrefixEnd(bucket));  // every item of this bucket is claimed
  }

  void Take(const KeyValue& candidate) {
    std::string claim = cprefix_ + candidate.key.substr(prefix_.size());
    PutOptions po;
    po.lease = session_->lease();
    Txn t;
    t.If({Cmp::CreateRevision(candidate.key) == candidate.create_revision,
          Cmp::CreateRevision(claim) == 0})
        .Then({Op::Put(claim, "", po), Op::Get(candidate.key)});
    // Not interrupted by the cancel token (only by the deadline), so that its outcome is known: a
    // claim made for a call canceled meanwhile is given back (OnTaken).
    CallOptions take = rpc_;
    take.cancel = CancelToken();
    auto self = shared_from_this();
    kv_.CommitAsync(t, take).Then(
        [self, claim](absl::StatusOr<TxnResponse> r) { self->OnTaken(std::move(r), claim); });
  }

  void OnTaken(absl::StatusOr<TxnResponse> r, const std::string& claim) {
    if (!r.ok()) return Done(r.status());
    if (!r->succeeded) return Look();  // taken or claimed meanwhile: look again
    if (r->responses.size() != 2 || r->responses[1].get.kvs.empty()) {
      return Done(absl::InternalError("queue: unexpected claim txn response"));
    }
    const KeyValue& item = r->responses[1].get.kvs[0];
    ClaimedItem out;
    out.item.key = item.key;
    out.item.value = item.value;
    out.item.create_revision = item.create_revision;
    size_t slash = item.key.find('/', prefix_.size());
    (void)absl::SimpleAtoi(item.key.substr(prefix_.size(), slash - prefix_.size()),
                           &out.item.priority);
    out.claim_key = claim;
    out.claim_revision = r->header.revision;
    if (call_.cancel.canceled()) return GiveBack(out);
    Done(Result(std::move(out)));
  }

  // The call was canceled while its claim was in flight: release the claim, then report.
  void GiveBack(const ClaimedItem& claimed) {
    Txn t;
    t.If({Cmp::CreateRevision(claimed.claim_key) == claimed.claim_revision})
        .Then({Op::Delete(claimed.claim_key)});
    auto self = shared_from_this();
    kv_.CommitAsync(t).Then([self](const absl::StatusOr<TxnResponse>&) {
      self->Done(absl::CancelledError("recipe call canceled"));
    });
  }

  // Nothing claimable at revision_: wait for any change to items or claims after it.
  void Wait() {
    WatchOptions wo;
    wo.range_end = PrefixEnd(prefix_);
    wo.start_revision = revision_ + 1;
    auto self = shared_from_this();
    internal::WaitForChangeAsync(watch_, cprefix_, wo, call_, call_.deadline, session_)
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
  const std::string prefix_;   // items: "<name>/"
  const std::string cprefix_;  // claims: "<name>!claim/"
  const std::shared_ptr<const Session> session_;
  const bool wait_;
  Promise<Result> promise_;
  std::function<void()> unlink_ = [] {};
  CallOptions call_;
  CallOptions rpc_;
  // Written by one step, read by the later ones (each started from the one before).
  Revision revision_ = 0;          // of the claims read
  std::set<std::string> claimed_;  // item keys with a claim
};

}  // namespace

absl::StatusOr<std::optional<QueueItem>> Queue::TryDequeue(const CallOptions& call) const {
  return TryDequeueAsync(call).Get();
}

Future<std::optional<QueueItem>> Queue::TryDequeueAsync(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) {
    return MakeReadyFuture<std::optional<QueueItem>>(st);
  }
  return std::make_shared<Taking>(kv_, watch_, name_, /*wait=*/false)->Start(call);
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

absl::StatusOr<std::optional<ClaimedItem>> Queue::TryClaim(const Session& session,
                                                           const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) return st;
  std::shared_ptr<const Session> unowned(std::shared_ptr<const Session>(), &session);
  return std::make_shared<Claiming>(kv_, watch_, name_, std::move(unowned), /*wait=*/false)
      ->Start(call)
      .Get();
}

absl::StatusOr<ClaimedItem> Queue::Claim(const Session& session, const CallOptions& call) const {
  return ClaimAsync(session, call).Get();
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
  if (absl::Status st = internal::CheckName(name_, "queue"); !st.ok()) {
    return MakeReadyFuture<ClaimedItem>(st);
  }
  // Not owned: the caller keeps `session` alive until the future completes (see queue.h).
  std::shared_ptr<const Session> unowned(std::shared_ptr<const Session>(), &session);
  auto c = std::make_shared<Claiming>(kv_, watch_, name_, std::move(unowned), /*wait=*/true);
  return internal::Map<std::optional<ClaimedItem>, ClaimedItem>(
      c->Start(call),
      [](absl::StatusOr<std::optional<ClaimedItem>> r) -> absl::StatusOr<ClaimedItem> {
        if (!r.ok()) return r.status();
        if (!r->has_value()) return absl::InternalError("queue: wait ended without a claim");
        return std::move(**r);
      });
}

}  // namespace cairn::recipes
