#include "client/src/lease_keeper.h"

#include <algorithm>

#include "cairn/errors.h"

namespace cairn::internal {
namespace {

thread_local bool t_in_lease_callback = false;

// How long to wait for a keepalive answer before sending again.
constexpr auto kResendInterval = std::chrono::milliseconds(1000);

}  // namespace

LeaseKeeper::LeaseKeeper(std::weak_ptr<Core> core) : core_(std::move(core)) {}

LeaseKeeper::~LeaseKeeper() { Shutdown(); }

void LeaseKeeper::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return;
    shutdown_ = true;
    if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
    for (auto& [id, l] : leases_) {
      l->stopped = true;
      l->lost_event.Set();
    }
    leases_.clear();
    cv_.notify_all();
  }
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
}

std::unique_ptr<LeaseKeepAlive> LeaseKeeper::Add(LeaseId id, KeepAliveOptions opts) {
  auto l = std::make_shared<KeptLease>();
  l->id = id;
  l->opts = std::move(opts);
  std::lock_guard<std::mutex> lock(mu_);
  if (shutdown_) {
    l->stopped = true;
    l->status = absl::CancelledError("client closed");
    l->lost_event.Set();
  } else {
    auto it = leases_.find(id);
    if (it != leases_.end()) {
      // A second keeper for the same lease replaces the first (which is stopped).
      it->second->stopped = true;
      it->second->status = absl::CancelledError("replaced by another KeepAlive of the same lease");
      it->second->lost_event.Set();
    }
    leases_[id] = l;
    if (!started_) {
      started_ = true;
      thread_ = std::thread([this] { Run(); });
    }
    cv_.notify_all();
  }
  return std::unique_ptr<LeaseKeepAlive>(new LeaseKeepAlive(shared_from_this(), l));
}

void LeaseKeeper::Stop(const std::shared_ptr<KeptLease>& l) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!l->stopped) {
      l->stopped = true;
      if (l->status.ok()) l->status = absl::CancelledError("keepalive stopped");
      auto it = leases_.find(l->id);
      if (it != leases_.end() && it->second == l) leases_.erase(it);
      l->lost_event.Set();
    }
  }
  if (!t_in_lease_callback) {
    std::lock_guard<std::mutex> wait(callback_mu_);
  }
}

absl::Status LeaseKeeper::Status(const KeptLease& l) {
  std::lock_guard<std::mutex> lock(mu_);
  return l.status;
}

int64_t LeaseKeeper::Ttl(const KeptLease& l) {
  std::lock_guard<std::mutex> lock(mu_);
  return l.ttl_seconds;
}

void LeaseKeeper::LoseLocked(const std::shared_ptr<KeptLease>& l, absl::Status why,
                             std::vector<Notice>* notices) {
  if (l->stopped) return;
  l->stopped = true;
  l->status = why;
  leases_.erase(l->id);
  // WaitLost() returns only after on_lost ran, so callers observe both in order.
  notices->push_back([l, why] {
    if (l->opts.on_lost) l->opts.on_lost(why);
    l->lost_event.Set();
  });
}

Clock::time_point LeaseKeeper::CheckLocked(Clock::time_point now, std::vector<int64_t>* to_send,
                                           std::vector<Notice>* notices) {
  Clock::time_point next = Clock::time_point::max();
  std::vector<std::shared_ptr<KeptLease>> expired;
  for (auto& [id, l] : leases_) {
    if (now >= l->deadline) {
      expired.push_back(l);
      continue;
    }
    if (to_send != nullptr && now >= l->next_send) {
      to_send->push_back(id);
      l->next_send = now + kResendInterval;
    }
    next = std::min({next, l->deadline, to_send != nullptr ? l->next_send : next});
  }
  for (auto& l : expired) {
    LoseLocked(l,
               MakeError(ErrorKind::kLeaseLost,
                         "no keepalive confirmed within the lease TTL; the lease may have expired"),
               notices);
  }
  return next;
}

void LeaseKeeper::Notify(std::vector<Notice>* notices) {
  if (notices->empty()) return;
  std::lock_guard<std::mutex> cb_lock(callback_mu_);
  t_in_lease_callback = true;
  for (auto& n : *notices) n();
  t_in_lease_callback = false;
  notices->clear();
}

void LeaseKeeper::Run() {
  int failures = 0;
  std::vector<Notice> notices;
  while (true) {
    std::shared_ptr<Core> core;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return shutdown_ || !leases_.empty(); });
      if (shutdown_) return;
      core = core_.lock();
      if (!core || core->closed()) return;
    }
    auto ep = core->Current();
    grpc::ClientContext ctx;
    std::string token = core->PrepareContext(&ctx, Clock::time_point::max(), true);
    auto stream = ep->lease->LeaseKeepAlive(&ctx);
    bool reader_done = false;
    bool got_any = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stream_ctx_ = &ctx;
      if (shutdown_) ctx.TryCancel();
      // Send every lease at once on a new stream: the new member learns them all.
      for (auto& [id, l] : leases_) l->next_send = Clock::time_point::min();
    }
    std::thread reader([&] {
      etcdserverpb::LeaseKeepAliveResponse resp;
      std::vector<Notice> local;
      while (stream->Read(&resp)) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          got_any = true;
          auto it = leases_.find(resp.id());
          if (it != leases_.end()) {
            auto l = it->second;
            if (resp.ttl() <= 0) {
              LoseLocked(l, absl::NotFoundError("etcdserver: requested lease not found"), &local);
            } else {
              auto now = Clock::now();
              l->ttl_seconds = resp.ttl();
              l->deadline = now + std::chrono::seconds(resp.ttl());
              // etcd's Go client: next keepalive after a third of the TTL.
              l->next_send = now + std::chrono::milliseconds(resp.ttl() * 1000 / 3);
              if (l->opts.on_renewed) {
                int64_t ttl = resp.ttl();
                local.push_back([l, ttl] {
                  if (l->opts.on_renewed) l->opts.on_renewed(ttl);
                });
              }
            }
          }
          cv_.notify_all();
        }
        Notify(&local);
      }
      std::lock_guard<std::mutex> lock(mu_);
      reader_done = true;
      cv_.notify_all();
    });
    // Writer: sends due keepalives, declares leases whose TTL ran out lost.
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!shutdown_ && !reader_done) {
        std::vector<int64_t> to_send;
        auto next = CheckLocked(Clock::now(), &to_send, &notices);
        if (!to_send.empty() || !notices.empty()) {
          lock.unlock();
          Notify(&notices);
          bool ok = true;
          for (int64_t id : to_send) {
            etcdserverpb::LeaseKeepAliveRequest req;
            req.set_id(id);
            if (!stream->Write(req)) {
              ok = false;
              break;
            }
          }
          lock.lock();
          if (!ok) break;
          continue;
        }
        if (next == Clock::time_point::max()) {
          cv_.wait(lock);
        } else {
          cv_.wait_until(lock, next);
        }
      }
      stream_ctx_ = nullptr;
    }
    ctx.TryCancel();
    reader.join();
    absl::Status st = FromGrpc(stream->Finish());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) return;
    }
    if (IsAuthError(st)) {
      (void)core->RefreshToken(token, Clock::now() + core->options().default_timeout);
    } else {
      core->ReportFailure(ep);
    }
    failures = got_any ? 0 : failures + 1;
    auto wake = Clock::now() + core->Backoff(failures);
    core.reset();
    // Back off, still declaring leases lost when their TTL runs out meanwhile.
    std::unique_lock<std::mutex> lock(mu_);
    while (!shutdown_) {
      auto next = std::min(wake, CheckLocked(Clock::now(), nullptr, &notices));
      if (!notices.empty()) {
        lock.unlock();
        Notify(&notices);
        lock.lock();
        continue;
      }
      if (Clock::now() >= wake) break;
      cv_.wait_until(lock, next);
    }
    if (shutdown_) return;
  }
}

}  // namespace cairn::internal

namespace cairn {

LeaseKeepAlive::LeaseKeepAlive(std::shared_ptr<internal::LeaseKeeper> k,
                               std::shared_ptr<internal::KeptLease> l)
    : keeper_(std::move(k)), lease_(std::move(l)) {}

LeaseKeepAlive::~LeaseKeepAlive() { Stop(); }

LeaseId LeaseKeepAlive::id() const { return lease_->id; }

void LeaseKeepAlive::Stop() { keeper_->Stop(lease_); }

absl::Status LeaseKeepAlive::status() const { return keeper_->Status(*lease_); }

absl::Status LeaseKeepAlive::WaitLost(Clock::time_point deadline) const {
  lease_->lost_event.WaitUntil(deadline);
  return status();
}

int64_t LeaseKeepAlive::ttl_seconds() const { return keeper_->Ttl(*lease_); }

}  // namespace cairn
