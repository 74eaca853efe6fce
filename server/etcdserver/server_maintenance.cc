// Server's maintenance methods (server.h, "maintenance"): alarms, quota, hashes, defragment.
#include <future>
#include <memory>

#include "server/base/logging.h"
#include "server/etcdserver/member_id.h"
#include "server/etcdserver/server.h"

namespace cairn::etcdserver {

using base::ErrorKind;
using base::MakeError;

namespace {
// How stale the backend size the quota check uses may be: measuring it asks RocksDB for a dozen
// properties, too much for every write; a write burst overshoots the quota by at most what it
// writes in this time (docs/limits.md).
constexpr int64_t kQuotaCheckIntervalMs = 50;
}  // namespace

bool Server::SpaceExceeded() {
  if (alarms_->HasAny(etcdserverpb::NOSPACE)) return true;
  const int64_t now = clock_->NowMs();
  int64_t checked = quota_checked_ms_.load(std::memory_order_relaxed);
  if (checked < 0 || now - checked >= kQuotaCheckIntervalMs) {
    quota_size_bytes_.store(QuotaSizeBytes(backend_.get()), std::memory_order_relaxed);
    quota_checked_ms_.store(now, std::memory_order_relaxed);
  }
  const int64_t size = quota_size_bytes_.load(std::memory_order_relaxed);
  if (size < config_.quota_backend_bytes) return false;
  // Over quota: raise NOSPACE for this member through raft (once at a time), as etcd's quota
  // check does, and refuse this write.
  if (!nospace_proposing_.exchange(true)) {
    CAIRN_LOG(kWarn, "etcdserver")
        << "backend size " << size << " exceeds --quota-backend-bytes "
        << config_.quota_backend_bytes << ": raising NOSPACE for member " << IdToHex(member_id_);
    cairnpb::InternalRequest r;
    r.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
    r.mutable_alarm()->set_memberid(member_id_);
    r.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
    Propose(std::move(r), [this](mvcc::ApplyResult) { nospace_proposing_ = false; });
  }
  return true;
}

void Server::Alarm(const etcdserverpb::AlarmRequest& request,
                   std::function<void(absl::StatusOr<etcdserverpb::AlarmResponse>)> done) {
  if (request.action() == etcdserverpb::AlarmRequest::GET) {
    etcdserverpb::AlarmResponse resp;
    for (auto& a : alarms_->List(request.alarm())) *resp.add_alarms() = std::move(a);
    return done(std::move(resp));
  }
  cairnpb::InternalRequest r;
  *r.mutable_alarm() = request;
  Propose(std::move(r), [this, done = std::move(done)](mvcc::ApplyResult res) {
    if (!res.status.ok()) return done(res.status);
    quota_checked_ms_ = -1;  // a disarm is followed by writes: measure afresh
    done(std::move(res.alarm));
  });
}

void Server::Hash(std::function<void(absl::StatusOr<uint32_t>)> done) {
  maintenance_.Run([this, done = std::move(done)](bool stopping) {
    if (stopping) return done(MakeError(ErrorKind::kStopped));
    done(HashBackend(backend_.get(), kv_->View()));
  });
}

void Server::HashKV(int64_t revision, std::function<void(absl::StatusOr<HashKvResult>)> done) {
  maintenance_.Run([this, revision, done = std::move(done)](bool stopping) {
    if (stopping) return done(MakeError(ErrorKind::kStopped));
    done(HashKv(backend_.get(), kv_->View(), revision));
  });
}

void Server::PeerHashKV(uint64_t peer, int64_t revision, int64_t timeout_ms,
                        std::function<void(absl::StatusOr<etcdserverpb::HashKVResponse>)> done) {
  if (!transport_) return done(absl::UnavailableError("no peer transport"));
  transport_->HashKV(peer, revision, timeout_ms, std::move(done));
}

void Server::OnHashKV(int64_t revision,
                      std::function<void(absl::StatusOr<etcdserverpb::HashKVResponse>)> done) {
  HashKV(revision, [this, done = std::move(done)](absl::StatusOr<HashKvResult> h) {
    if (!h.ok()) return done(h.status());
    etcdserverpb::HashKVResponse resp;
    resp.set_hash(h->hash);
    resp.set_compact_revision(h->compact_revision);
    FillHeader(resp.mutable_header());
    resp.mutable_header()->set_revision(h->revision);
    done(std::move(resp));
  });
}

void Server::Defragment(StatusDone done) {
  maintenance_.Run([this, done = std::move(done)](bool stopping) {
    if (stopping) return done(MakeError(ErrorKind::kStopped));
    CAIRN_LOG(kInfo, "etcdserver") << "defragmenting: backend size " << db_size_bytes();
    // RocksDB keeps what the oldest live snapshot can see: the published view was taken before
    // the background compaction's deletes, so an empty entry through raft first makes the store
    // publish a view after them (every proposal completes: applied, failed or stopped).
    auto applied = std::make_shared<std::promise<void>>();
    auto published = applied->get_future();
    Propose(cairnpb::InternalRequest(), [applied](mvcc::ApplyResult) { applied->set_value(); });
    published.wait();
    absl::Status st = etcdserver::Defragment(backend_.get());
    quota_checked_ms_ = -1;  // the backend shrank: the next write measures it again
    CAIRN_LOG(kInfo, "etcdserver") << "defragmented: backend size " << db_size_bytes();
    done(st);
  });
}

void Server::StartAutoCompaction() {
  if (config_.auto_compaction_retention <= 0) return;
  Compactor::Deps deps;
  deps.mode = config_.auto_compaction_mode;
  deps.retention = config_.auto_compaction_retention;
  deps.revision_interval_ms = config_.auto_compaction_interval_ms;
  deps.is_leader = [this] { return is_leader(); };
  deps.revision = [this] { return revision(); };
  deps.compact = [this](int64_t rev) {
    // Proposed as a client's Compact is, and waited for (the compactor has its own thread).
    auto done = std::make_shared<std::promise<absl::Status>>();
    auto result = done->get_future();
    cairnpb::InternalRequest r;
    r.mutable_compaction()->set_revision(rev);
    Propose(std::move(r), [done](mvcc::ApplyResult res) { done->set_value(res.status); });
    absl::Status st = result.get();  // every proposal completes (applied, failed or stopped)
    if (!st.ok() && !base::IsError(st, ErrorKind::kCompacted)) {
      CAIRN_LOG(kWarn, "compactor") << "auto-compaction at " << rev << " failed: " << st;
      return false;
    }
    return true;
  };
  compactor_ = std::make_unique<Compactor>(std::move(deps));
  compactor_->Start(clock_);
}

void Server::StopAutoCompaction() {
  if (compactor_) compactor_->Stop();
}

}  // namespace cairn::etcdserver
