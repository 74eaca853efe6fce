#include "server/api/handlers.h"

#include <type_traits>

#include "server/api/auth_gate.h"
#include "server/api/validate.h"
#include "server/base/errors.h"

namespace cairn::api {

using etcdserverpb::ResponseHeader;

void Handlers::FillHeader(ResponseHeader* header) {
  header->set_revision(server_->revision());
  server_->FillHeader(header);
}

template <typename Take>
void Handlers::ProposeThen(cairnpb::InternalRequest request, Take take, Done done) {
  etcdserver::Server* server = server_;
  server_->Propose(std::move(request),
                   [server, take, done = std::move(done)](mvcc::ApplyResult result) mutable {
                     if (result.status.ok()) {
                       ResponseHeader* header = take(result);
                       server->FillHeader(header);  // the revision is the entry's
                     }
                     done(result.status);
                   });
}

// ---- KV ----

void Handlers::Range(const etcdserverpb::RangeRequest& req, etcdserverpb::RangeResponse* resp,
                     Done done) {
  if (!gate_->Admit(Method::kRange, &done)) return;
  // etcd reports a permission error only after the linearizable barrier (v3_server.go Range).
  absl::Status denied = Authorize(server_->auth(), CallerScope::Current(), req);
  if (absl::Status st = ValidateRange(req); !st.ok()) return done(st);
  etcdserver::Server* server = server_;
  auto read = [server, &req, resp]() -> absl::Status {
    auto result = server->Range(req);
    if (!result.ok()) return result.status();
    *resp = std::move(*result);
    return absl::OkStatus();
  };
  // Serializable: the local view at once. Linearizable: after a ReadIndex barrier (the member
  // has applied everything committed before the call), then the local view.
  if (req.serializable()) return done(denied.ok() ? read() : denied);
  server_->ReadBarrier([read, denied, done = std::move(done)](absl::Status barrier) {
    if (barrier.ok() && !denied.ok()) return done(denied);
    done(barrier.ok() ? read() : barrier);
  });
}

void Handlers::Put(const etcdserverpb::PutRequest& req, etcdserverpb::PutResponse* resp,
                   Done done) {
  if (!gate_->Admit(Method::kPut, &done)) return;
  if (absl::Status st = ValidatePut(req); !st.ok()) return done(st);
  if (absl::Status st = Authorize(server_->auth(), CallerScope::Current(), req); !st.ok()) {
    return done(st);
  }
  cairnpb::InternalRequest ir;
  *ir.mutable_put() = req;
  ProposeThen(
      std::move(ir),
      [resp](mvcc::ApplyResult& r) {
        *resp = std::move(r.put);
        return resp->mutable_header();
      },
      std::move(done));
}

void Handlers::DeleteRange(const etcdserverpb::DeleteRangeRequest& req,
                           etcdserverpb::DeleteRangeResponse* resp, Done done) {
  if (!gate_->Admit(Method::kDeleteRange, &done)) return;
  if (absl::Status st = ValidateDeleteRange(req); !st.ok()) return done(st);
  if (absl::Status st = Authorize(server_->auth(), CallerScope::Current(), req); !st.ok()) {
    return done(st);
  }
  cairnpb::InternalRequest ir;
  *ir.mutable_delete_range() = req;
  ProposeThen(
      std::move(ir),
      [resp](mvcc::ApplyResult& r) {
        *resp = std::move(r.delete_range);
        return resp->mutable_header();
      },
      std::move(done));
}

void Handlers::Txn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp,
                   Done done) {
  if (!gate_->Admit(Method::kTxn, &done, !mvcc::IsTxnReadOnly(req))) return;
  if (absl::Status st = ValidateTxn(req, server_->config().max_txn_ops); !st.ok()) {
    return done(st);
  }
  if (absl::Status st = Authorize(server_->auth(), CallerScope::Current(), req); !st.ok()) {
    return done(st);
  }
  if (mvcc::IsTxnReadOnly(req)) {
    // As etcd: a read-only txn is served from the local view without going through the log,
    // after a ReadIndex barrier (etcd's read-only txns are linearizable).
    etcdserver::Server* server = server_;
    server_->ReadBarrier([server, &req, resp, done = std::move(done)](absl::Status barrier) {
      if (!barrier.ok()) return done(barrier);
      auto result = server->ReadTxn(req);
      if (!result.ok()) return done(result.status());
      *resp = std::move(*result);
      done(absl::OkStatus());
    });
    return;
  }
  cairnpb::InternalRequest ir;
  *ir.mutable_txn() = req;
  ProposeThen(
      std::move(ir),
      [resp](mvcc::ApplyResult& r) {
        *resp = std::move(r.txn);
        return resp->mutable_header();
      },
      std::move(done));
}

void Handlers::Compact(const etcdserverpb::CompactionRequest& req,
                       etcdserverpb::CompactionResponse* resp, Done done) {
  if (!gate_->Admit(Method::kCompact, &done)) return;
  // etcd 3.4 checks no permission for Compaction (its auth applier does not guard it), only that
  // a sent token is valid; tests/auth pins this against etcd.
  if (auto user = UserOf(server_->auth(), CallerScope::Current()); !user.ok()) {
    return done(user.status());
  }
  cairnpb::InternalRequest ir;
  *ir.mutable_compaction() = req;
  bool physical = req.physical();
  server_->Propose(std::move(ir), [this, resp, physical, done](mvcc::ApplyResult r) {
    if (!r.status.ok()) return done(r.status);
    auto finish = [this, resp, done](bool) {
      FillHeader(resp->mutable_header());  // etcd answers with the revision at reply time
      done(absl::OkStatus());
    };
    if (physical) return server_->OnCompacted(r.compact_revision, finish);
    finish(true);
  });
}

// ---- Maintenance ----

void Handlers::Status(const etcdserverpb::StatusRequest&, etcdserverpb::StatusResponse* resp,
                      Done done) {
  if (!gate_->Admit(Method::kStatus, &done)) return;
  FillHeader(resp->mutable_header());
  resp->set_version(kEtcdApiVersion);
  int64_t size = server_->db_size_bytes();
  resp->set_dbsize(size);
  resp->set_dbsizeinuse(size);
  resp->set_leader(server_->leader());
  resp->set_raftterm(server_->term());
  resp->set_raftindex(server_->raft_index());
  resp->set_raftappliedindex(server_->applied_index());
  resp->set_islearner(server_->is_learner());
  done(absl::OkStatus());
}

void Handlers::MoveLeader(const etcdserverpb::MoveLeaderRequest& req,
                          etcdserverpb::MoveLeaderResponse* resp, Done done) {
  if (!gate_->Admit(Method::kMoveLeader, &done)) return;
  if (absl::Status st = AuthorizeAdmin(server_->auth(), CallerScope::Current()); !st.ok()) {
    return done(st);
  }
  server_->MoveLeader(req.targetid(), [this, resp, done = std::move(done)](absl::Status st) {
    if (st.ok()) FillHeader(resp->mutable_header());
    done(st);
  });
}

// ---- Cluster ----

namespace {

void ToEtcdMember(const cairnpb::Member& in, etcdserverpb::Member* out) {
  out->set_id(in.id());
  out->set_name(in.name());
  for (const auto& u : in.peer_urls()) out->add_peerurls(u);
  for (const auto& u : in.client_urls()) out->add_clienturls(u);
  out->set_islearner(in.is_learner());
}

}  // namespace

// Runs a membership change on the member's admin thread (it may wait for the leader's view or
// forward to it) and answers with the member list as of its application.
template <typename Resp, typename Start>
void Handlers::MemberCall(Resp* resp, Start start, Done done) {
  server_->RunAdmin([this, resp, start = std::move(start), done = std::move(done)] {
    start([this, resp, done](absl::StatusOr<cairnpb::Member> m) {
      if (!m.ok()) return done(m.status());
      if constexpr (std::is_same_v<Resp, etcdserverpb::MemberAddResponse>) {
        ToEtcdMember(*m, resp->mutable_member());
      }
      FillHeader(resp->mutable_header());
      for (const auto& member : server_->Members()) ToEtcdMember(member, resp->add_members());
      done(absl::OkStatus());
    });
  });
}

void Handlers::Alarm(const etcdserverpb::AlarmRequest& req, etcdserverpb::AlarmResponse* resp,
                     Done done) {
  if (!gate_->Admit(Method::kAlarm, &done)) return;
  server_->Alarm(
      req, [this, resp, done = std::move(done)](absl::StatusOr<etcdserverpb::AlarmResponse> r) {
        if (!r.ok()) return done(r.status());
        *resp = std::move(*r);
        FillHeader(resp->mutable_header());
        done(absl::OkStatus());
      });
}

void Handlers::Defragment(const etcdserverpb::DefragmentRequest&,
                          etcdserverpb::DefragmentResponse* resp, Done done) {
  if (!gate_->Admit(Method::kDefragment, &done)) return;
  if (absl::Status st = AuthorizeMaintenance(server_->auth(), CallerScope::Current()); !st.ok()) {
    return done(st);
  }
  server_->Defragment([this, resp, done = std::move(done)](absl::Status st) {
    if (st.ok()) FillHeader(resp->mutable_header());
    done(st);
  });
}

void Handlers::Hash(const etcdserverpb::HashRequest&, etcdserverpb::HashResponse* resp, Done done) {
  if (!gate_->Admit(Method::kHash, &done)) return;
  if (absl::Status st = AuthorizeMaintenance(server_->auth(), CallerScope::Current()); !st.ok()) {
    return done(st);
  }
  server_->Hash([this, resp, done = std::move(done)](absl::StatusOr<uint32_t> h) {
    if (!h.ok()) return done(h.status());
    resp->set_hash(*h);
    FillHeader(resp->mutable_header());
    done(absl::OkStatus());
  });
}

void Handlers::HashKV(const etcdserverpb::HashKVRequest& req, etcdserverpb::HashKVResponse* resp,
                      Done done) {
  if (!gate_->Admit(Method::kHashKV, &done)) return;
  // Root only, as etcd; the members' corruption check asks on the peer transport instead
  // (docs/auth.md "Maintenance").
  if (absl::Status st = AuthorizeMaintenance(server_->auth(), CallerScope::Current()); !st.ok()) {
    return done(st);
  }
  server_->HashKV(req.revision(),
                  [this, resp, done = std::move(done)](absl::StatusOr<etcdserver::HashKvResult> h) {
                    if (!h.ok()) return done(h.status());
                    resp->set_hash(h->hash);
                    resp->set_compact_revision(h->compact_revision);
                    FillHeader(resp->mutable_header());
                    done(absl::OkStatus());
                  });
}

void Handlers::MemberList(const etcdserverpb::MemberListRequest&,
                          etcdserverpb::MemberListResponse* resp, Done done) {
  if (!gate_->Admit(Method::kMemberList, &done)) return;
  server_->FillHeader(resp->mutable_header());  // as etcd's cluster server: no revision
  for (const auto& m : server_->Members()) ToEtcdMember(m, resp->add_members());
  done(absl::OkStatus());
}

void Handlers::MemberAdd(const etcdserverpb::MemberAddRequest& req,
                         etcdserverpb::MemberAddResponse* resp, Done done) {
  if (!gate_->Admit(Method::kMemberAdd, &done)) return;
  if (absl::Status st = AuthorizeAdmin(server_->auth(), CallerScope::Current()); !st.ok()) {
    return done(st);
  }
  std::vector<std::string> urls(req.peerurls().begin(), req.peerurls().end());
  bool learner = req.islearner();
  MemberCall(
      resp,
      [this, urls, learner](auto member_done) {
        server_->AddMember(urls, learner, std::move(member_done));
      },
      std::move(done));
}

void Handlers::MemberRemove(const etcdserverpb::MemberRemoveRequest& req,
                            etcdserverpb::MemberRemoveResponse* resp, Done done) {
  if (!gate_->Admit(Method::kMemberRemove, &done)) return;
  if (absl::Status st = AuthorizeAdmin(server_->auth(), CallerScope::Current()); !st.ok()) {
    return done(st);
  }
  uint64_t id = req.id();
  MemberCall(
      resp, [this, id](auto member_done) { server_->RemoveMember(id, std::move(member_done)); },
      std::move(done));
}

void Handlers::MemberUpdate(const etcdserverpb::MemberUpdateRequest& req,
                            etcdserverpb::MemberUpdateResponse* resp, Done done) {
  if (!gate_->Admit(Method::kMemberUpdate, &done)) return;
  if (absl::Status st = AuthorizeAdmin(server_->auth(), CallerScope::Current()); !st.ok()) {
    return done(st);
  }
  uint64_t id = req.id();
  std::vector<std::string> urls(req.peerurls().begin(), req.peerurls().end());
  MemberCall(
      resp,
      [this, id, urls](auto member_done) {
        server_->UpdateMember(id, urls, std::move(member_done));
      },
      std::move(done));
}

void Handlers::MemberPromote(const etcdserverpb::MemberPromoteRequest& req,
                             etcdserverpb::MemberPromoteResponse* resp, Done done) {
  if (!gate_->Admit(Method::kMemberPromote, &done)) return;
  if (absl::Status st = AuthorizeAdmin(server_->auth(), CallerScope::Current()); !st.ok()) {
    return done(st);
  }
  uint64_t id = req.id();
  MemberCall(
      resp, [this, id](auto member_done) { server_->PromoteMember(id, std::move(member_done)); },
      std::move(done));
}

// ---- Lease ----

void Handlers::LeaseGrant(const etcdserverpb::LeaseGrantRequest& req,
                          etcdserverpb::LeaseGrantResponse* resp, Done done) {
  if (!gate_->Admit(Method::kLeaseGrant, &done)) return;
  // No permission needed, but a bad token fails as in etcd (every raft request checks it).
  if (auto user = UserOf(server_->auth(), CallerScope::Current()); !user.ok()) {
    return done(user.status());
  }
  etcdserver::Server* server = server_;
  server_->GrantLease(req.id(), req.ttl(),
                      [resp, server, done = std::move(done)](mvcc::ApplyResult r) {
                        if (r.status.ok()) {
                          *resp = std::move(r.lease_grant);
                          server->FillHeader(resp->mutable_header());
                        }
                        done(r.status);
                      });
}

void Handlers::LeaseRevoke(const etcdserverpb::LeaseRevokeRequest& req,
                           etcdserverpb::LeaseRevokeResponse* resp, Done done) {
  if (!gate_->Admit(Method::kLeaseRevoke, &done)) return;
  if (absl::Status st =
          AuthorizeLeaseRevoke(server_->auth(), CallerScope::Current(),
                               server_->kv()->LeaseKeys(server_->kv()->View(), req.id()));
      !st.ok()) {
    return done(st);
  }
  cairnpb::InternalRequest ir;
  *ir.mutable_lease_revoke() = req;
  ProposeThen(
      std::move(ir),
      [resp](mvcc::ApplyResult& r) {
        *resp = std::move(r.lease_revoke);
        return resp->mutable_header();
      },
      std::move(done));
}

void Handlers::LeaseKeepAlive(const etcdserverpb::LeaseKeepAliveRequest& req,
                              etcdserverpb::LeaseKeepAliveResponse* resp, Done done) {
  if (!gate_->Admit(Method::kLeaseKeepAlive, &done)) return;
  // On a follower the renewal is forwarded: `done` then runs later, on a transport thread.
  const int64_t id = req.id();
  server_->RenewLease(id, [this, id, resp, done = std::move(done)](absl::StatusOr<int64_t> ttl) {
    if (!ttl.ok() && !base::IsError(ttl.status(), base::ErrorKind::kLeaseNotFound)) {
      return done(ttl.status());  // no leader within the bound, stopped...
    }
    resp->set_id(id);
    resp->set_ttl(ttl.ok() ? *ttl : 0);  // etcd: an unknown lease is answered with TTL 0
    FillHeader(resp->mutable_header());
    done(absl::OkStatus());
  });
}

void Handlers::LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& req,
                               etcdserverpb::LeaseTimeToLiveResponse* resp, Done done) {
  if (!gate_->Admit(Method::kLeaseTimeToLive, &done)) return;
  // Answered by the leader (a follower forwards): only it knows the remaining TTL.
  server_->LeaseTimeToLive(req, [resp, done = std::move(done)](
                                    absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> result) {
    if (!result.ok()) return done(result.status());
    *resp = *std::move(result);
    done(absl::OkStatus());
  });
}

void Handlers::LeaseLeases(const etcdserverpb::LeaseLeasesRequest&,
                           etcdserverpb::LeaseLeasesResponse* resp, Done done) {
  if (!gate_->Admit(Method::kLeaseLeases, &done)) return;
  FillHeader(resp->mutable_header());
  for (int64_t id : server_->LeaseIds()) resp->add_leases()->set_id(id);
  done(absl::OkStatus());
}

}  // namespace cairn::api
