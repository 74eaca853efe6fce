#include "server/etcdserver/membership_admin.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/base/errors.h"
#include "server/base/thread_name.h"
#include "server/base/url.h"
#include "server/etcdserver/member_id.h"

namespace cairn::etcdserver {

using base::ErrorKind;
using base::MakeError;

namespace {

// A learner may be promoted once its match index is at least this share of the leader's (etcd).
constexpr double kLearnerReadyFraction = 0.9;
// etcd's HealthInterval: for --strict-reconfig-check, a peer counts as active once it has been in
// steady contact for this long.
constexpr int64_t kHealthIntervalMs = 5000;

bool ValidPeerUrl(const std::string& u) {
  absl::StatusOr<base::Url> url = base::ParseUrl(u);
  return url.ok() && url->path.empty();
}

bool ValidPeerUrls(const std::vector<std::string>& urls) {
  return !urls.empty() && std::all_of(urls.begin(), urls.end(), ValidPeerUrl);
}

// Voting members and how many of them have started (published their name), as etcd counts them.
struct VoterCount {
  std::vector<uint64_t> ids;
  int started = 0;
};

VoterCount CountVoters(const std::vector<cairnpb::Member>& members, uint64_t except) {
  VoterCount c;
  for (const auto& m : members) {
    if (m.is_learner() || m.id() == except) continue;
    c.ids.push_back(m.id());
    if (!m.name().empty()) ++c.started;
  }
  return c;
}

int Quorum(int voters) { return voters / 2 + 1; }

}  // namespace

MembershipAdmin::MembershipAdmin(Deps deps) : deps_(std::move(deps)) {
  thread_ = std::thread([this] {
    base::SetThreadName("cairn-members");
    Loop();
  });
}

// ---- the admin executor ----

void MembershipAdmin::RunAdmin(std::function<void()> task) {
  {
    absl::MutexLock l(&mu_);
    if (!stopping_) {
      queue_.push_back(std::move(task));
      return;
    }
  }
  task();
}

void MembershipAdmin::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void MembershipAdmin::Loop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(this, &MembershipAdmin::HasWork));
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

// ---- member changes ----

void MembershipAdmin::AddMember(const std::vector<std::string>& peer_urls, bool learner,
                                MemberDone done) {
  Membership* membership = deps_.membership;
  if (!ValidPeerUrls(peer_urls)) return done(MakeError(ErrorKind::kMemberBadURLs));
  if (!transport_) {
    return done(absl::FailedPreconditionError(
        "etcdserver: this member has no peer listener (start it with --listen-peer-urls)"));
  }
  if (membership->FindByPeerUrls(peer_urls) != 0) {
    return done(MakeError(ErrorKind::kPeerURLExist));
  }
  // etcd derives a new member's id from its peer URLs, the cluster token and the time.
  uint64_t id =
      ComputeMemberId(peer_urls, absl::StrCat(deps_.initial_cluster_token, deps_.clock->WallMs()));
  if (membership->Get(id) || membership->IsRemoved(id)) {
    return done(MakeError(ErrorKind::kMemberExist));
  }
  MayAddMember(learner, [this, id, peer_urls, learner, done = std::move(done)](absl::Status st) {
    if (!st.ok()) return done(st);
    cairnpb::InternalRequest ctx;
    auto* m = ctx.mutable_member_change();
    m->set_id(id);
    for (const auto& u : peer_urls) m->add_peer_urls(u);
    m->set_is_learner(learner);
    deps_.propose_conf_change(raft::ConfChange{learner ? raft::ConfChangeType::kAddLearnerNode
                                                       : raft::ConfChangeType::kAddNode,
                                               id, ctx.SerializeAsString()},
                              std::move(done));
  });
}

void MembershipAdmin::RemoveMember(uint64_t id, MemberDone done) {
  if (!deps_.membership->Get(id)) return done(MakeError(ErrorKind::kMemberNotFound));
  MayRemoveMember(id, [this, id, done = std::move(done)](absl::Status st) {
    if (!st.ok()) return done(st);
    deps_.propose_conf_change(raft::ConfChange{raft::ConfChangeType::kRemoveNode, id, ""},
                              std::move(done));
  });
}

void MembershipAdmin::PromoteMember(uint64_t id, MemberDone done) {
  auto m = deps_.membership->Get(id);
  if (!m) return done(MakeError(ErrorKind::kMemberNotFound));
  if (!m->is_learner()) return done(MakeError(ErrorKind::kMemberNotLearner));
  uint64_t leader = deps_.leader();
  if (leader != deps_.member_id) return ForwardPromote(leader, *m, std::move(done));
  if (absl::Status st = LearnerReady(id); !st.ok()) return done(st);
  if (absl::Status st = MayPromoteMember(); !st.ok()) return done(st);
  cairnpb::InternalRequest ctx;
  *ctx.mutable_member_change() = *m;
  ctx.mutable_member_change()->set_is_learner(false);
  deps_.propose_conf_change(
      raft::ConfChange{raft::ConfChangeType::kAddNode, id, ctx.SerializeAsString()},
      std::move(done));
}

void MembershipAdmin::ForwardPromote(uint64_t leader, const cairnpb::Member& learner,
                                     MemberDone done) {
  // Only the leader knows how far the learner is: forward to it (as etcd), one attempt.
  if (leader == 0 || !transport_) return done(MakeError(ErrorKind::kNoLeader));
  Forwarder::Call<bool> call;
  call.wait_for_leader = false;
  call.local = [](Forwarder::Reply<bool> reply) { reply(MakeError(ErrorKind::kLeaderChanged)); };
  call.remote = [this, id = learner.id()](uint64_t to, int64_t timeout_ms,
                                          Forwarder::Reply<bool> reply) {
    transport_->MemberPromote(to, id, timeout_ms, [reply](absl::Status st) {
      if (!st.ok()) return reply(st);
      reply(true);
    });
  };
  deps_.forwarder->CallLeader<bool>(
      std::move(call), [this, learner, done = std::move(done)](absl::StatusOr<bool> r) {
        if (!r.ok()) return done(r.status());
        auto promoted = deps_.membership->Get(learner.id());
        cairnpb::Member out = promoted ? *promoted : learner;
        out.set_is_learner(false);
        done(out);
      });
}

absl::Status MembershipAdmin::LearnerReady(uint64_t id) {
  std::map<uint64_t, uint64_t> match = deps_.progress_match();
  uint64_t leader_match = match.count(deps_.member_id) ? match[deps_.member_id] : 0;
  uint64_t learner_match = match.count(id) ? match[id] : 0;
  if (static_cast<double>(learner_match) <
      static_cast<double>(leader_match) * kLearnerReadyFraction) {
    return MakeError(ErrorKind::kLearnerNotReady);
  }
  return absl::OkStatus();
}

void MembershipAdmin::UpdateMember(uint64_t id, const std::vector<std::string>& peer_urls,
                                   MemberDone done) {
  Membership* membership = deps_.membership;
  if (!ValidPeerUrls(peer_urls)) return done(MakeError(ErrorKind::kMemberBadURLs));
  if (!membership->Get(id)) return done(MakeError(ErrorKind::kMemberNotFound));
  uint64_t other = membership->FindByPeerUrls(peer_urls);
  if (other != 0 && other != id) return done(MakeError(ErrorKind::kPeerURLExist));
  cairnpb::InternalRequest r;
  auto* m = r.mutable_member_update();
  m->set_id(id);
  for (const auto& u : peer_urls) m->add_peer_urls(u);
  deps_.propose(std::move(r), [membership, id, done = std::move(done)](mvcc::ApplyResult res) {
    if (!res.status.ok()) return done(res.status);
    auto stored = membership->Get(id);
    if (!stored) return done(MakeError(ErrorKind::kMemberNotFound));
    done(*stored);
  });
}

// ---- peer activity and the leader's view ----

void MembershipAdmin::NotePeerMessage(uint64_t from) {
  const int64_t now = deps_.clock->NowMs();
  absl::MutexLock l(&contact_mu_);
  PeerContact& contact = peer_contact_[from];
  if (contact.last_ms == 0 || now - contact.last_ms > deps_.election_timeout_ms) {
    contact.since_ms = now;
  }
  contact.last_ms = now;
}

void MembershipAdmin::NotePeerUnreachable(uint64_t to) {
  absl::MutexLock l(&contact_mu_);
  peer_contact_.erase(to);
}

std::set<uint64_t> MembershipAdmin::ActiveMembersLocal() {
  const int64_t now = deps_.clock->NowMs();
  std::set<uint64_t> active{deps_.member_id};
  absl::MutexLock l(&contact_mu_);
  for (const auto& [id, contact] : peer_contact_) {
    if (now - contact.last_ms <= deps_.election_timeout_ms &&
        now - contact.since_ms >= kHealthIntervalMs) {
      active.insert(id);
    }
  }
  return active;
}

cairnpb::MembersResponse MembershipAdmin::OnMembers(uint64_t cluster_id) {
  cairnpb::MembersResponse resp;
  resp.set_cluster_id(cluster_id);
  resp.set_leader(deps_.leader());
  for (auto& m : deps_.membership->Members()) *resp.add_members() = std::move(m);
  for (uint64_t id : ActiveMembersLocal()) resp.add_active(id);
  return resp;
}

void MembershipAdmin::OnMemberPromote(uint64_t id, std::function<void(absl::Status)> done) {
  if (deps_.leader() != deps_.member_id) return done(MakeError(ErrorKind::kNotLeader));
  PromoteMember(id,
                [done = std::move(done)](absl::StatusOr<cairnpb::Member> m) { done(m.status()); });
}

void MembershipAdmin::ActiveMembers(Forwarder::Reply<std::set<uint64_t>> done) {
  // Only the leader hears from every member (followers do not talk to each other), so its view
  // decides. A leader this member cannot reach is no active quorum it could count on.
  using Active = std::set<uint64_t>;
  Forwarder::Call<Active> call;
  call.local = [this](Forwarder::Reply<Active> reply) { reply(ActiveMembersLocal()); };
  call.remote = [this](uint64_t leader, int64_t timeout_ms, Forwarder::Reply<Active> reply) {
    transport_->Members(leader, timeout_ms,
                        [leader, reply](absl::StatusOr<cairnpb::MembersResponse> resp) {
                          if (!resp.ok()) return reply(resp.status());
                          if (resp->leader() != leader) {
                            return reply(MakeError(ErrorKind::kLeaderChanged));
                          }
                          reply(Active(resp->active().begin(), resp->active().end()));
                        });
  };
  call.on_timeout = ErrorKind::kUnhealthy;
  deps_.forwarder->CallLeader(std::move(call), std::move(done));
}

// ---- --strict-reconfig-check ----

void MembershipAdmin::MayAddMember(bool learner, StatusDone next) {
  if (!deps_.strict_reconfig_check) return next(absl::OkStatus());
  VoterCount v = CountVoters(deps_.membership->Members(), 0);
  if (!learner) {
    // The new voter has not started yet: the started ones must be a quorum of the grown cluster
    // (a lone started member may still add a second one, to recover a one-member cluster).
    int members = static_cast<int>(v.ids.size()) + 1;
    if (!(v.started == 1 && members == 2) && v.started < Quorum(members)) {
      return next(MakeError(ErrorKind::kNotEnoughStartedMembers));
    }
  }
  ActiveMembers(
      [ids = std::move(v.ids), next = std::move(next)](absl::StatusOr<std::set<uint64_t>> active) {
        if (!active.ok()) return next(active.status());
        for (uint64_t id : ids) {
          if (!active->count(id)) return next(MakeError(ErrorKind::kUnhealthy));
        }
        next(absl::OkStatus());
      });
}

void MembershipAdmin::MayRemoveMember(uint64_t id, StatusDone next) {
  if (!deps_.strict_reconfig_check) return next(absl::OkStatus());
  std::vector<cairnpb::Member> members = deps_.membership->Members();
  auto it = std::find_if(members.begin(), members.end(),
                         [id](const cairnpb::Member& m) { return m.id() == id; });
  if (it == members.end() || it->is_learner()) return next(absl::OkStatus());  // no quorum at stake
  VoterCount rest = CountVoters(members, id);
  if (rest.started < Quorum(static_cast<int>(rest.ids.size()))) {
    return next(MakeError(ErrorKind::kNotEnoughStartedMembers));
  }
  ActiveMembers([id, self = deps_.member_id, rest = std::move(rest),
                 next = std::move(next)](absl::StatusOr<std::set<uint64_t>> active) {
    if (!active.ok()) return next(active.status());
    // Removing a member that is down cannot cost the active quorum anything.
    if (id != self && !active->count(id)) return next(absl::OkStatus());
    int active_rest = 0;
    for (uint64_t v : rest.ids) active_rest += active->count(v) ? 1 : 0;
    if (active_rest < Quorum(static_cast<int>(rest.ids.size()))) {
      return next(MakeError(ErrorKind::kUnhealthy));
    }
    next(absl::OkStatus());
  });
}

absl::Status MembershipAdmin::MayPromoteMember() {
  if (!deps_.strict_reconfig_check) return absl::OkStatus();
  // The learner has started (it is caught up); with it, the started voters must be a quorum.
  VoterCount v = CountVoters(deps_.membership->Members(), 0);
  int members = static_cast<int>(v.ids.size()) + 1;
  int started = v.started + 1;
  if (!(started == 1 && members == 2) && started < Quorum(members)) {
    return MakeError(ErrorKind::kNotEnoughStartedMembers);
  }
  return absl::OkStatus();
}

}  // namespace cairn::etcdserver
