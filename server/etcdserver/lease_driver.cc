#include "server/etcdserver/lease_driver.h"

#include <algorithm>
#include <random>

#include "server/base/errors.h"
#include "server/base/thread_name.h"

namespace cairn::etcdserver {

using base::ErrorKind;
using base::MakeError;

namespace {

// The lease timer's tick.
constexpr int64_t kLeaseTickMs = 500;
// Expired leases revoked through the log per tick at most (etcd limits revokes to 1000/s so a
// mass expiry cannot flood the log).
constexpr size_t kLeaseRevokeBatch = 500;
// Remaining TTLs per checkpoint proposal at most.
constexpr size_t kLeaseCheckpointBatch = 1000;

}  // namespace

void LeaseDriver::Start() {
  next_checkpoint_ms_ = deps_.clock->NowMs() + deps_.checkpoint_interval_ms;
  thread_ = std::thread([this] {
    base::SetThreadName("cairn-lease");
    Loop();
  });
}

void LeaseDriver::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void LeaseDriver::Loop() {
  while (true) {
    {
      absl::MutexLock l(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(kLeaseTickMs));
      if (stopping_) return;
    }
    if (deps_.periodic) deps_.periodic();
    if (!deps_.is_leader()) continue;
    RevokeExpired();
    if (deps_.checkpoint_interval_ms > 0 && deps_.clock->NowMs() >= next_checkpoint_ms_) {
      next_checkpoint_ms_ = deps_.clock->NowMs() + deps_.checkpoint_interval_ms;
      Checkpoint();
    }
  }
}

void LeaseDriver::RevokeExpired() {
  for (int64_t id : deps_.lessor->Expired(kLeaseRevokeBatch)) {
    cairnpb::InternalRequest r;
    r.mutable_lease_revoke()->set_id(id);
    deps_.propose(std::move(r), [lessor = deps_.lessor, id](mvcc::ApplyResult res) {
      if (!res.status.ok() && !base::IsError(res.status, ErrorKind::kLeaseNotFound)) {
        lessor->RevokeFailed(id);
      }
    });
  }
}

void LeaseDriver::Checkpoint() {
  auto remaining = deps_.lessor->RemainingForCheckpoint();
  for (size_t i = 0; i < remaining.size(); i += kLeaseCheckpointBatch) {
    cairnpb::InternalRequest r;
    for (size_t j = i; j < std::min(remaining.size(), i + kLeaseCheckpointBatch); ++j) {
      auto* cp = r.mutable_lease_checkpoint()->add_checkpoints();
      cp->set_id(remaining[j].first);
      cp->set_remaining_ttl(remaining[j].second);
    }
    deps_.propose(std::move(r), [](mvcc::ApplyResult) {});
  }
}

void LeaseDriver::Grant(int64_t id, int64_t ttl_seconds, Done done) {
  if (ttl_seconds > lease::kMaxLeaseTtlSeconds) {
    mvcc::ApplyResult r;
    r.status = MakeError(ErrorKind::kLeaseTTLTooLarge);
    done(std::move(r));
    return;
  }
  ttl_seconds = std::max(ttl_seconds, deps_.lessor->min_ttl_seconds());
  if (id == 0) {
    // etcd picks a positive 63-bit id; a collision is caught at apply (kLeaseExist).
    thread_local std::mt19937_64 rng(std::random_device{}());
    do {
      id = static_cast<int64_t>(rng() & 0x7fffffffffffffffULL);
    } while (id == 0 || deps_.lessor->Get(id).has_value());
  }
  cairnpb::InternalRequest r;
  r.mutable_lease_grant()->set_id(id);
  r.mutable_lease_grant()->set_ttl(ttl_seconds);
  deps_.propose(std::move(r), std::move(done));
}

absl::StatusOr<int64_t> LeaseDriver::RenewLocal(int64_t id) {
  bool checkpointed = false;
  auto ttl = deps_.lessor->Renew(id, &checkpointed);
  if (ttl.ok() && checkpointed) {
    // The lease runs on a full TTL again: forget the checkpointed remaining TTL (etcd does too).
    cairnpb::InternalRequest r;
    auto* cp = r.mutable_lease_checkpoint()->add_checkpoints();
    cp->set_id(id);
    cp->set_remaining_ttl(0);
    deps_.propose(std::move(r), [](mvcc::ApplyResult) {});
  }
  return ttl;
}

void LeaseDriver::Renew(int64_t id, RenewDone done) {
  if (deps_.is_learner()) return done(MakeError(ErrorKind::kNotSupportedForLearner));
  // As etcd: a follower forwards to the leader and, while the leader is unknown or unreachable
  // (an election), retries until a leader answers or the bound passes, so a keepalive sent during
  // a leader change still renews.
  Forwarder::Call<int64_t> call;
  call.local = [this, id](Forwarder::Reply<int64_t> reply) {
    WhenApplied([this, id, reply](absl::Status st) {
      if (!st.ok()) return reply(st);
      reply(RenewLocal(id));
    });
  };
  call.remote = [this, id](uint64_t leader, int64_t timeout_ms, Forwarder::Reply<int64_t> reply) {
    transport_->LeaseRenew(leader, id, timeout_ms, std::move(reply));
  };
  call.final_error = [](const absl::Status& st) {
    return base::IsError(st, ErrorKind::kLeaseNotFound);
  };
  call.on_timeout = ErrorKind::kTimeout;
  deps_.forwarder->CallLeader(std::move(call), std::move(done));
}

etcdserverpb::LeaseTimeToLiveResponse LeaseDriver::TimeToLiveLocal(
    const etcdserverpb::LeaseTimeToLiveRequest& req) {
  etcdserverpb::LeaseTimeToLiveResponse resp;
  mvcc::ReadView view = deps_.kv->View();
  resp.set_id(req.id());
  auto info = deps_.lessor->Get(req.id());
  resp.mutable_header()->set_revision(view.revision);
  deps_.fill_header(resp.mutable_header());
  if (!info) {
    resp.set_ttl(-1);  // etcd answers an unknown lease with TTL -1, not an error
    return resp;
  }
  resp.set_ttl(std::max<int64_t>(0, info->remaining_ms / 1000));
  resp.set_grantedttl(info->ttl_seconds);
  if (req.keys()) {
    for (auto& k : deps_.kv->LeaseKeys(view, req.id())) resp.add_keys(std::move(k));
  }
  return resp;
}

void LeaseDriver::TimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& request,
                             TimeToLiveDone done) {
  if (deps_.is_learner()) return done(MakeError(ErrorKind::kNotSupportedForLearner));
  using Resp = etcdserverpb::LeaseTimeToLiveResponse;
  // One try (etcd does not retry TimeToLive across a leader change either).
  Forwarder::Call<Resp> call;
  call.wait_for_leader = false;
  call.local = [this, request](Forwarder::Reply<Resp> reply) {
    WhenApplied([this, request, reply](absl::Status st) {
      if (!st.ok()) return reply(st);
      reply(TimeToLiveLocal(request));
    });
  };
  call.remote = [this, request](uint64_t leader, int64_t timeout_ms, Forwarder::Reply<Resp> reply) {
    transport_->LeaseTimeToLive(leader, request, timeout_ms, std::move(reply));
  };
  deps_.forwarder->CallLeader<Resp>(std::move(call),
                                    [this, done = std::move(done)](absl::StatusOr<Resp> resp) {
                                      if (resp.ok()) deps_.fill_header(resp->mutable_header());
                                      done(std::move(resp));
                                    });
}

void LeaseDriver::WhenApplied(std::function<void(absl::Status)> then) {
  // As etcd's waitAppliedIndex: the leader answers from its lessor only once it has applied every
  // entry committed so far, so a lease granted through a follower (applied there first) is never
  // "not found" on a leader that has yet to apply the grant.
  if (!deps_.wait_applied) return then(absl::OkStatus());
  deps_.wait_applied(std::move(then));
}

void LeaseDriver::OnRenew(int64_t id, RenewDone done) {
  if (!deps_.is_leader()) return done(MakeError(ErrorKind::kNotLeader));
  WhenApplied([this, id, done = std::move(done)](absl::Status st) {
    if (!st.ok()) return done(st);
    done(RenewLocal(id));
  });
}

void LeaseDriver::OnTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& request,
                               TimeToLiveDone done) {
  if (!deps_.is_leader()) return done(MakeError(ErrorKind::kNotLeader));
  WhenApplied([this, request, done = std::move(done)](absl::Status st) {
    if (!st.ok()) return done(st);
    done(TimeToLiveLocal(request));
  });
}

}  // namespace cairn::etcdserver
