#include "server/etcdserver/server.h"

#include <filesystem>

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
  s->applier_ = std::thread([raw = s.get()] { raw->ApplierLoop(); });
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
  if (applier_.joinable()) applier_.join();
}

}  // namespace cairn::etcdserver
