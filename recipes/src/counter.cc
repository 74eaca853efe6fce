#include "cairn/recipes/counter.h"

#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

namespace {

struct Read {
  int64_t value = 0;
  Revision mod_revision = 0;  // 0: missing
};

absl::StatusOr<Read> Parse(const std::vector<KeyValue>& kvs) {
  Read r;
  if (kvs.empty()) return r;
  r.mod_revision = kvs[0].mod_revision;
  if (!absl::SimpleAtoi(kvs[0].value, &r.value)) {
    return absl::FailedPreconditionError("counter: value of " + kvs[0].key +
                                         " is not a decimal int64");
  }
  return r;
}

using Next = std::function<absl::StatusOr<std::optional<int64_t>>(int64_t)>;
using Updated = std::pair<Read, bool>;  // the value read or written; whether it was written

// Read-modify-write without a blocked thread: `next` maps the current value to the new one
// (nullopt: do not write); a Txn guarded by the mod revision writes it, and a conflicting writer
// makes it look again (its Else branch reads the key), at most kMaxCounterAttempts times.
class Updating : public std::enable_shared_from_this<Updating> {
 public:
  Updating(Kv kv, std::string key, Next next)
      : kv_(std::move(kv)), key_(std::move(key)), next_(std::move(next)) {}

  Future<Updated> Start(const CallOptions& call) {
    Future<Updated> f = promise_.future();
    call_ = internal::OwnCall(call, promise_, &unlink_);
    rpc_ = internal::RpcCall(call_, call_.deadline);
    auto self = shared_from_this();
    kv_.GetAsync(key_, {}, rpc_).Then([self](absl::StatusOr<GetResponse> got) {
      if (!got.ok()) return self->Done(got.status());
      self->Try(Parse(got->kvs));
    });
    return f;
  }

 private:
  void Try(absl::StatusOr<Read> cur) {
    if (!cur.ok()) return Done(cur.status());
    if (attempts_++ >= kMaxCounterAttempts) {
      return Done(
          absl::AbortedError("counter: too many conflicting writers (kMaxCounterAttempts)"));
    }
    absl::StatusOr<std::optional<int64_t>> n = next_(cur->value);
    if (!n.ok()) return Done(n.status());
    if (!n->has_value()) return Done(Updated(*cur, false));
    const int64_t value = **n;
    Txn t;
    t.If({Cmp::ModRevision(key_) == cur->mod_revision})
        .Then({Op::Put(key_, std::to_string(value))})
        .Else({Op::Get(key_)});
    auto self = shared_from_this();
    kv_.CommitAsync(t, rpc_).Then([self, value](absl::StatusOr<TxnResponse> r) {
      if (!r.ok()) return self->Done(r.status());
      if (r->succeeded) return self->Done(Updated(Read{value, r->header.revision}, true));
      if (r->responses.empty()) {
        return self->Done(absl::InternalError("counter: unexpected txn response"));
      }
      self->Try(Parse(r->responses[0].get.kvs));
    });
  }

  void Done(absl::StatusOr<Updated> r) {
    unlink_();
    promise_.Set(std::move(r));
  }

  const Kv kv_;
  const std::string key_;
  const Next next_;
  Promise<Updated> promise_;
  std::function<void()> unlink_ = [] {};
  CallOptions call_;
  CallOptions rpc_;
  int attempts_ = 0;  // touched by one step at a time
};

Future<Updated> Update(const Kv& kv, const std::string& key, const CallOptions& call, Next next) {
  if (absl::Status st = internal::CheckName(key, "counter"); !st.ok()) {
    return MakeReadyFuture<Updated>(st);
  }
  return std::make_shared<Updating>(kv, key, std::move(next))->Start(call);
}

}  // namespace

absl::StatusOr<int64_t> Counter::Get(const CallOptions& call) const { return GetAsync(call).Get(); }

Future<int64_t> Counter::GetAsync(const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(key_, "counter"); !st.ok()) {
    return MakeReadyFuture<int64_t>(st);
  }
  return internal::Map<GetResponse, int64_t>(
      kv_.GetAsync(key_, {}, call), [](absl::StatusOr<GetResponse> got) -> absl::StatusOr<int64_t> {
        if (!got.ok()) return got.status();
        auto r = Parse(got->kvs);
        if (!r.ok()) return r.status();
        return r->value;
      });
}

absl::StatusOr<int64_t> Counter::Add(int64_t delta, const CallOptions& call) const {
  return AddAsync(delta, call).Get();
}

Future<int64_t> Counter::AddAsync(int64_t delta, const CallOptions& call) const {
  return internal::Map<Updated, int64_t>(
      Update(kv_, key_, call,
             [delta](int64_t v) -> absl::StatusOr<std::optional<int64_t>> {
               if ((delta > 0 && v > std::numeric_limits<int64_t>::max() - delta) ||
                   (delta < 0 && v < std::numeric_limits<int64_t>::min() - delta)) {
                 return absl::OutOfRangeError("counter: add overflows int64");
               }
               return std::optional<int64_t>(v + delta);
             }),
      [](absl::StatusOr<Updated> r) -> absl::StatusOr<int64_t> {
        if (!r.ok()) return r.status();
        return r->first.value;
      });
}

absl::StatusOr<bool> Counter::CompareAndSet(int64_t expected, int64_t desired,
                                            const CallOptions& call) const {
  return CompareAndSetAsync(expected, desired, call).Get();
}

Future<bool> Counter::CompareAndSetAsync(int64_t expected, int64_t desired,
                                         const CallOptions& call) const {
  return internal::Map<Updated, bool>(
      Update(kv_, key_, call,
             [expected, desired](int64_t v) -> absl::StatusOr<std::optional<int64_t>> {
               if (v != expected) return std::optional<int64_t>();
               return std::optional<int64_t>(desired);
             }),
      [](absl::StatusOr<Updated> r) -> absl::StatusOr<bool> {
        if (!r.ok()) return r.status();
        return r->second;
      });
}

absl::Status Counter::Set(int64_t value, const CallOptions& call) const {
  return SetAsync(value, call).Get().status();
}

Future<bool> Counter::SetAsync(int64_t value, const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(key_, "counter"); !st.ok()) {
    return MakeReadyFuture<bool>(st);
  }
  return internal::Map<PutResponse, bool>(
      kv_.PutAsync(key_, std::to_string(value), {}, call),
      [](absl::StatusOr<PutResponse> r) -> absl::StatusOr<bool> {
        if (!r.ok()) return r.status();
        return true;
      });
}

}  // namespace cairn::recipes
