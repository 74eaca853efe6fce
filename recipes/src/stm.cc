#include "cairn/recipes/stm.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

void Stm::Reset() {
  reads_.clear();
  writes_.clear();
  missed_.clear();
  snapshot_revision_ = 0;
}

namespace {

bool IsSnapshot(Isolation iso) {
  return iso == Isolation::kSerializableSnapshot || iso == Isolation::kSerializable;
}

}  // namespace

GetOptions Stm::ReadOptions() const {
  GetOptions go;
  if (IsSnapshot(iso_) && snapshot_revision_ > 0) go.revision = snapshot_revision_;
  return go;
}

const Stm::Read* Stm::Store(const std::string& key, const GetResponse& r) {
  const bool snapshot = IsSnapshot(iso_);
  if (snapshot && snapshot_revision_ == 0) snapshot_revision_ = r.header.revision;
  Read rd;
  rd.read_revision = snapshot ? snapshot_revision_ : r.header.revision;
  if (!r.kvs.empty()) {
    rd.exists = true;
    rd.kv = r.kvs[0];
  }
  auto [ins, ok] = reads_.emplace(key, std::move(rd));
  (void)ok;
  return &ins->second;
}

std::vector<std::string> Stm::TakeMissed() {
  std::vector<std::string> out;
  out.swap(missed_);
  return out;
}

absl::StatusOr<const Stm::Read*> Stm::Fetch(const std::string& key) {
  auto it = reads_.find(key);
  if (it != reads_.end()) return &it->second;
  if (defer_) {
    if (std::find(missed_.begin(), missed_.end(), key) == missed_.end()) missed_.push_back(key);
    return absl::UnavailableError("stm: read deferred (the transaction function runs again)");
  }
  auto r = kv_.Get(key, ReadOptions(), call_);
  if (!r.ok()) return r.status();
  return Store(key, *r);
}

absl::Status Stm::Prefetch(const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    auto r = Fetch(k);
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Stm::Get(const std::string& key) {
  auto w = writes_.find(key);
  if (w != writes_.end()) return w->second.is_delete ? std::string() : w->second.value;
  auto r = Fetch(key);
  if (!r.ok()) return r.status();
  return (*r)->exists ? (*r)->kv.value : std::string();
}

absl::StatusOr<bool> Stm::Exists(const std::string& key) {
  auto w = writes_.find(key);
  if (w != writes_.end()) return !w->second.is_delete;
  auto r = Fetch(key);
  if (!r.ok()) return r.status();
  return (*r)->exists;
}

absl::StatusOr<Revision> Stm::Rev(const std::string& key) {
  auto r = Fetch(key);
  if (!r.ok()) return r.status();
  return (*r)->exists ? (*r)->kv.mod_revision : 0;
}

void Stm::Put(const std::string& key, std::string value, PutOptions opts) {
  Write& w = writes_[key];
  w.is_delete = false;
  w.value = std::move(value);
  w.opts = opts;
}

void Stm::Delete(const std::string& key) {
  Write& w = writes_[key];
  w.is_delete = true;
  w.value.clear();
}

Txn Stm::MakeCommit() const {
  std::vector<Compare> cmps;
  if (iso_ != Isolation::kReadCommitted) {
    for (const auto& [k, rd] : reads_) {
      // Unchanged since it was read: mod revision <= read revision.
      cmps.push_back(Cmp::ModRevision(k) < rd.read_revision + 1);
    }
  }
  if (iso_ == Isolation::kSerializableSnapshot && snapshot_revision_ > 0) {
    for (const auto& [k, w] : writes_) {
      if (!reads_.count(k)) cmps.push_back(Cmp::ModRevision(k) < snapshot_revision_ + 1);
    }
  }
  std::vector<Op> ops;
  for (const auto& [k, w] : writes_) {
    ops.push_back(w.is_delete ? Op::Delete(k) : Op::Put(k, w.value, w.opts));
  }
  Txn t;
  t.If(std::move(cmps)).Then(std::move(ops));
  return t;
}

absl::StatusOr<TxnResponse> RunStm(const Kv& kv, const std::function<absl::Status(Stm&)>& apply,
                                   const StmOptions& options) {
  if (!apply) return absl::InvalidArgumentError("stm: apply is empty");
  if (options.max_attempts <= 0) return absl::InvalidArgumentError("stm: max_attempts must be > 0");
  Clock::time_point deadline = internal::DeadlineOf(options.call);
  CallOptions rpc = internal::RpcCall(options.call, deadline);
  Stm stm(kv, options.isolation, rpc);
  for (int attempt = 0; attempt < options.max_attempts; ++attempt) {
    stm.Reset();
    if (absl::Status st = stm.Prefetch(options.prefetch); !st.ok()) return st;
    if (absl::Status st = apply(stm); !st.ok()) return st;
    auto r = kv.Commit(stm.MakeCommit(), rpc);
    if (!r.ok()) return r.status();
    if (r->succeeded) return std::move(*r);
  }
  return absl::AbortedError("stm: too many conflicting transactions (max_attempts)");
}

namespace {

// One RunStmAsync: each attempt runs `apply` with deferred reads; the keys it missed are read one
// after another (the first fixes the snapshot revision), then `apply` runs again; once it misses
// nothing, its writes are committed (a conflict starts the next attempt).
class StmRun : public std::enable_shared_from_this<StmRun> {
 public:
  StmRun(Kv kv, std::function<absl::Status(Stm&)> apply, const StmOptions& options)
      : kv_(std::move(kv)),
        apply_(std::move(apply)),
        options_(options),
        stm_(kv_, options.isolation, CallOptions()) {}

  Future<TxnResponse> Start() {
    Future<TxnResponse> f = promise_.future();
    call_ = internal::OwnCall(options_.call, promise_, &unlink_);
    rpc_ = internal::RpcCall(call_, call_.deadline);
    stm_ = Stm(kv_, options_.isolation, rpc_);
    stm_.DeferReads();
    Attempt();
    return f;
  }

 private:
  void Attempt() {
    if (attempt_++ >= options_.max_attempts) {
      return Done(absl::AbortedError("stm: too many conflicting transactions (max_attempts)"));
    }
    stm_.Reset();
    Read(options_.prefetch, 0);
  }

  // Reads keys[i..] (skipping those read already), then runs `apply`.
  void Read(std::vector<std::string> keys, size_t i) {
    stm_.ClearWrites();  // so that Exists below looks at the reads only
    while (i < keys.size() && stm_.Exists(keys[i]).ok()) ++i;
    (void)stm_.TakeMissed();
    if (i == keys.size()) return Apply();
    auto self = shared_from_this();
    std::string key = keys[i];
    kv_.GetAsync(key, stm_.ReadOptions(), rpc_)
        .Then([self, keys = std::move(keys), i](absl::StatusOr<GetResponse> r) mutable {
          if (!r.ok()) return self->Done(r.status());
          self->stm_.Store(keys[i], *r);
          self->Read(std::move(keys), i + 1);
        });
  }

  void Apply() {
    if (call_.cancel.canceled()) return Done(absl::CancelledError("stm: canceled"));
    stm_.ClearWrites();
    absl::Status st = apply_(stm_);
    std::vector<std::string> missed = stm_.TakeMissed();
    if (!missed.empty()) return Read(std::move(missed), 0);
    if (!st.ok()) return Done(st);
    auto self = shared_from_this();
    kv_.CommitAsync(stm_.MakeCommit(), rpc_).Then([self](absl::StatusOr<TxnResponse> r) {
      if (!r.ok()) return self->Done(r.status());
      if (r->succeeded) return self->Done(std::move(*r));
      self->Attempt();
    });
  }

  void Done(absl::StatusOr<TxnResponse> r) {
    unlink_();
    promise_.Set(std::move(r));
  }

  const Kv kv_;
  const std::function<absl::Status(Stm&)> apply_;
  const StmOptions options_;
  Promise<TxnResponse> promise_;
  std::function<void()> unlink_ = [] {};
  CallOptions call_;
  CallOptions rpc_;
  // Used by one step at a time (each started from the completion of the one before).
  Stm stm_;
  int attempt_ = 0;
};

}  // namespace

Future<TxnResponse> RunStmAsync(const Kv& kv, std::function<absl::Status(Stm&)> apply,
                                const StmOptions& options) {
  if (!apply)
    return MakeReadyFuture<TxnResponse>(absl::InvalidArgumentError("stm: apply is empty"));
  if (options.max_attempts <= 0) {
    return MakeReadyFuture<TxnResponse>(
        absl::InvalidArgumentError("stm: max_attempts must be > 0"));
  }
  return std::make_shared<StmRun>(kv, std::move(apply), options)->Start();
}

}  // namespace cairn::recipes
