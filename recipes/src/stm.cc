#include "cairn/recipes/stm.h"

#include <algorithm>

#include "src/internal.h"

namespace cairn::recipes {

void Stm::Reset() {
  reads_.clear();
  writes_.clear();
  snapshot_revision_ = 0;
}

absl::StatusOr<const Stm::Read*> Stm::Fetch(const std::string& key) {
  auto it = reads_.find(key);
  if (it != reads_.end()) return &it->second;
  GetOptions go;
  const bool snapshot =
      iso_ == Isolation::kSerializableSnapshot || iso_ == Isolation::kSerializable;
  if (snapshot && snapshot_revision_ > 0) go.revision = snapshot_revision_;
  auto r = kv_.Get(key, go, call_);
  if (!r.ok()) return r.status();
  if (snapshot && snapshot_revision_ == 0) snapshot_revision_ = r->header.revision;
  Read rd;
  rd.read_revision = snapshot ? snapshot_revision_ : r->header.revision;
  if (!r->kvs.empty()) {
    rd.exists = true;
    rd.kv = r->kvs[0];
  }
  auto [ins, ok] = reads_.emplace(key, std::move(rd));
  (void)ok;
  return &ins->second;
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

Future<TxnResponse> RunStmAsync(const Kv& kv, std::function<absl::Status(Stm&)> apply,
                                const StmOptions& options) {
  return RunAsync<TxnResponse>(options.call,
                               [kv, apply = std::move(apply), options](const CallOptions& c) {
                                 StmOptions o = options;
                                 o.call = c;
                                 return RunStm(kv, apply, o);
                               });
}

}  // namespace cairn::recipes
