#include "server/etcdserver/server.h"

#include <chrono>
#include <filesystem>
#include <random>

#include "server/base/check.h"
#include "server/base/errors.h"
#include "server/base/logging.h"
#include "server/etcdserver/member_id.h"
#include "server/storage/encoding.h"

namespace cairn::etcdserver {

using base::ErrorKind;
using base::MakeError;

namespace {

void PutMeta(rocksdb::WriteBatch* wb, storage::Backend* b, const char* name, uint64_t v) {
  std::string value;
  storage::PutBE64(&value, v);
  CAIRN_CHECK(wb->Put(b->cf(storage::Cf::kMeta), name, value).ok());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Open(const ServerConfig& config) {
  std::unique_ptr<Server> s(new Server(config));
  if (s->config_.data_dir.empty()) s->config_.data_dir = s->config_.name + ".cairn";
  std::error_code ec;
  std::filesystem::create_directories(s->config_.data_dir + "/member", ec);
  if (ec) return absl::InternalError("create " + s->config_.data_dir + ": " + ec.message());
  auto backend = storage::Backend::Open(s->config_.data_dir + "/member/db");
  if (!backend.ok()) return backend.status();
  s->backend_ = std::move(*backend);
  storage::Backend* b = s->backend_.get();

  // Identity: fixed at first start (etcd semantics: a restart needs no initial flags).
  int64_t member_id = b->ReadMetaInt("member_id", 0);
  rocksdb::WriteBatch wb;
  if (member_id == 0) {
    uint64_t id =
        ComputeMemberId(s->config_.initial_advertise_peer_urls, s->config_.initial_cluster_token);
    PutMeta(&wb, b, "member_id", id);
    PutMeta(&wb, b, "cluster_id", ComputeClusterId({id}));
    CAIRN_CHECK(wb.Put(b->cf(storage::Cf::kMeta), "member_name", s->config_.name).ok());
  }
  // A single member elects itself at every start: a new term, as etcd's does.
  s->term_ = static_cast<uint64_t>(b->ReadMetaInt("term", 0)) + 1;
  PutMeta(&wb, b, "term", s->term_);
  b->Write(&wb);
  b->Sync();
  s->member_id_ = static_cast<uint64_t>(b->ReadMetaInt("member_id", 0));
  s->cluster_id_ = static_cast<uint64_t>(b->ReadMetaInt("cluster_id", 0));

  s->kv_ = std::make_unique<mvcc::KvStore>(b);
  s->watch_hub_ =
      std::make_unique<mvcc::WatchHub>(s->kv_.get(), s->config_.watch_progress_notify_interval_ms);
  // etcd: minTTL = (3 * electionTicks / 2) heartbeats, rounded up to whole seconds.
  int64_t ticks = std::max<int64_t>(
      1, s->config_.election_timeout_ms / std::max<int64_t>(1, s->config_.heartbeat_interval_ms));
  int64_t min_ttl_ms = (3 * ticks / 2) * s->config_.heartbeat_interval_ms;
  s->lessor_ = std::make_unique<lease::Lessor>(
      [] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
      },
      (min_ttl_ms + 999) / 1000);
  s->lessor_->Restore(s->kv_->Leases());
  s->applier_ = std::thread([raw = s.get()] { raw->ApplierLoop(); });
  s->lease_timer_ = std::thread([raw = s.get()] { raw->LeaseLoop(); });
  CAIRN_LOG(kInfo, "etcdserver") << "member " << IdToHex(s->member_id_) << " of cluster "
                                 << IdToHex(s->cluster_id_) << " started, term=" << s->term_
                                 << " revision=" << s->kv_->View().revision;
  return s;
}

Server::~Server() { Stop(); }

void Server::FillHeader(etcdserverpb::ResponseHeader* header) const {
  header->set_cluster_id(cluster_id_);
  header->set_member_id(member_id_);
  header->set_raft_term(term_);
}

void Server::Propose(cairnpb::InternalRequest request, Done done) {
  // etcd checks the size of the marshalled log entry against --max-request-bytes.
  if (static_cast<int64_t>(request.ByteSizeLong()) > config_.max_request_bytes) {
    mvcc::ApplyResult r;
    r.status = MakeError(ErrorKind::kRequestTooLarge);
    done(std::move(r));
    return;
  }
  absl::Status refused;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) {
      refused = MakeError(ErrorKind::kStopped);
    } else if (queue_.size() >= config_.max_pending_proposals) {
      refused = MakeError(ErrorKind::kTooManyRequests);
    } else {
      queue_.push_back(Proposal{std::move(request), std::move(done)});
    }
  }
  if (!refused.ok()) {
    mvcc::ApplyResult r;
    r.status = refused;
    done(std::move(r));
    return;
  }
  cv_.notify_one();
}

void Server::ApplierLoop() {
  std::vector<Proposal> batch;
  std::vector<mvcc::ApplyResult> results;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && batch.size() < config_.max_batch_entries) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    uint64_t index = kv_->applied_index();
    for (Proposal& p : batch) results.push_back(kv_->Apply(++index, p.request));
    backend_->Sync();  // one fsync for the whole batch: durable before acknowledged
    fsyncs_.fetch_add(1, std::memory_order_relaxed);
    entries_.fetch_add(batch.size(), std::memory_order_relaxed);
    kv_->Publish();
    // Watchers see a revision only once it is durable and readable, in revision order.
    for (const mvcc::ApplyResult& r : results) {
      if (r.revision > 0) watch_hub_->Notify(r.revision, r.events);
      for (const auto& g : r.leases_granted) lessor_->OnGranted(g);
      for (int64_t id : r.leases_revoked) lessor_->OnRevoked(id);
      for (const auto& c : r.leases_checkpointed) lessor_->OnCheckpointed(c);
    }
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
    batch.clear();
    results.clear();
  }
}

void Server::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ && !applier_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  lease_cv_.notify_all();
  if (lease_timer_.joinable()) lease_timer_.join();
  if (applier_.joinable()) applier_.join();
}

void Server::GrantLease(int64_t id, int64_t ttl_seconds, Done done) {
  if (ttl_seconds > lease::kMaxLeaseTtlSeconds) {
    mvcc::ApplyResult r;
    r.status = MakeError(ErrorKind::kLeaseTTLTooLarge);
    done(std::move(r));
    return;
  }
  ttl_seconds = std::max(ttl_seconds, lessor_->min_ttl_seconds());
  if (id == 0) {
    // etcd picks a positive 63-bit id; a collision is caught at apply (kLeaseExist) and retried.
    thread_local std::mt19937_64 rng(std::random_device{}());
    do {
      id = static_cast<int64_t>(rng() & 0x7fffffffffffffffULL);
    } while (id == 0 || lessor_->Get(id).has_value());
  }
  cairnpb::InternalRequest r;
  r.mutable_lease_grant()->set_id(id);
  r.mutable_lease_grant()->set_ttl(ttl_seconds);
  Propose(std::move(r), std::move(done));
}

absl::StatusOr<int64_t> Server::RenewLease(int64_t id) {
  bool checkpointed = false;
  auto ttl = lessor_->Renew(id, &checkpointed);
  if (ttl.ok() && checkpointed) {
    // The lease runs on a full TTL again: forget the checkpointed remaining TTL (etcd does too).
    cairnpb::InternalRequest r;
    auto* cp = r.mutable_lease_checkpoint()->add_checkpoints();
    cp->set_id(id);
    cp->set_remaining_ttl(0);
    Propose(std::move(r), [](mvcc::ApplyResult) {});
  }
  return ttl;
}

void Server::LeaseLoop() {
  // Expired leases are revoked through the log at most kLeaseRevokeBatch per tick (etcd limits
  // revokes to 1000/s so a mass expiry cannot flood the log).
  constexpr int64_t kLeaseTickMs = 500;
  constexpr size_t kLeaseRevokeBatch = 500;
  constexpr size_t kLeaseCheckpointBatch = 1000;
  auto next_checkpoint = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(config_.lease_checkpoint_interval_ms);
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    lease_cv_.wait_for(l, std::chrono::milliseconds(kLeaseTickMs));
    if (stopping_) return;
    l.unlock();
    for (int64_t id : lessor_->Expired(kLeaseRevokeBatch)) {
      cairnpb::InternalRequest r;
      r.mutable_lease_revoke()->set_id(id);
      Propose(std::move(r), [this, id](mvcc::ApplyResult res) {
        if (!res.status.ok() && !base::IsError(res.status, ErrorKind::kLeaseNotFound)) {
          lessor_->RevokeFailed(id);
        }
      });
    }
    if (config_.lease_checkpoint_interval_ms > 0 &&
        std::chrono::steady_clock::now() >= next_checkpoint) {
      next_checkpoint = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(config_.lease_checkpoint_interval_ms);
      auto remaining = lessor_->RemainingForCheckpoint();
      for (size_t i = 0; i < remaining.size(); i += kLeaseCheckpointBatch) {
        cairnpb::InternalRequest r;
        for (size_t j = i; j < std::min(remaining.size(), i + kLeaseCheckpointBatch); ++j) {
          auto* cp = r.mutable_lease_checkpoint()->add_checkpoints();
          cp->set_id(remaining[j].first);
          cp->set_remaining_ttl(remaining[j].second);
        }
        Propose(std::move(r), [](mvcc::ApplyResult) {});
      }
    }
    l.lock();
  }
}

}  // namespace cairn::etcdserver
