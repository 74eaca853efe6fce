#include "cairn/recipes/counter.h"

#include <limits>

#include "absl/strings/numbers.h"
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

// Read-modify-write: `next` maps the current value to the new one (nullopt: do not write).
template <typename F>
absl::StatusOr<std::pair<Read, bool>> Update(const Kv& kv, const std::string& key,
                                             const CallOptions& call, F next) {
  if (absl::Status st = internal::CheckName(key, "counter"); !st.ok()) return st;
  Clock::time_point deadline = internal::DeadlineOf(call);
  CallOptions rpc = internal::RpcCall(call, deadline);
  auto got = kv.Get(key, {}, rpc);
  if (!got.ok()) return got.status();
  auto cur = Parse(got->kvs);
  if (!cur.ok()) return cur.status();
  for (int attempt = 0; attempt < kMaxCounterAttempts; ++attempt) {
    absl::StatusOr<std::optional<int64_t>> n = next(cur->value);
    if (!n.ok()) return n.status();
    if (!n->has_value()) return std::make_pair(*cur, false);
    Read written{**n, 0};
    Txn t;
    t.If({Cmp::ModRevision(key) == cur->mod_revision})
        .Then({Op::Put(key, std::to_string(**n))})
        .Else({Op::Get(key)});
    auto r = kv.Commit(t, rpc);
    if (!r.ok()) return r.status();
    if (r->succeeded) {
      written.mod_revision = r->header.revision;
      return std::make_pair(written, true);
    }
    if (r->responses.empty()) return absl::InternalError("counter: unexpected txn response");
    cur = Parse(r->responses[0].get.kvs);
    if (!cur.ok()) return cur.status();
  }
  return absl::AbortedError("counter: too many conflicting writers (kMaxCounterAttempts)");
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
  auto r = Update(kv_, key_, call, [delta](int64_t v) -> absl::StatusOr<std::optional<int64_t>> {
    if ((delta > 0 && v > std::numeric_limits<int64_t>::max() - delta) ||
        (delta < 0 && v < std::numeric_limits<int64_t>::min() - delta)) {
      return absl::OutOfRangeError("counter: add overflows int64");
    }
    return std::optional<int64_t>(v + delta);
  });
  if (!r.ok()) return r.status();
  return r->first.value;
}

absl::StatusOr<bool> Counter::CompareAndSet(int64_t expected, int64_t desired,
                                            const CallOptions& call) const {
  auto r = Update(kv_, key_, call,
                  [expected, desired](int64_t v) -> absl::StatusOr<std::optional<int64_t>> {
                    if (v != expected) return std::optional<int64_t>();
                    return std::optional<int64_t>(desired);
                  });
  if (!r.ok()) return r.status();
  return r->second;
}

absl::Status Counter::Set(int64_t value, const CallOptions& call) const {
  if (absl::Status st = internal::CheckName(key_, "counter"); !st.ok()) return st;
  return kv_.Put(key_, std::to_string(value), {}, call).status();
}

}  // namespace cairn::recipes
