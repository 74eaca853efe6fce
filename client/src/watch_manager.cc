#include "client/src/watch_manager.h"

#include <algorithm>

#include "cairn/errors.h"
#include "client/src/convert.h"

namespace cairn::internal {
namespace {

thread_local bool t_in_watch_callback = false;

bool IsAuthCancel(const std::string& reason) {
  return reason.find("permission denied") != std::string::npos ||
         reason.find("invalid auth token") != std::string::npos ||
         reason.find("user name is empty") != std::string::npos ||
         reason.find("revision of auth store is old") != std::string::npos;
}

}  // namespace

WatchManager::WatchManager(std::weak_ptr<Core> core) : core_(std::move(core)) {}

WatchManager::~WatchManager() { Shutdown(); }

void WatchManager::Shutdown() {
  std::vector<Delivery> finals;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return;
    shutdown_ = true;
    if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
    for (auto& [id, st] : watchers_) {
      st->done = true;
      st->final_status = absl::CancelledError("client closed");
      st->created_or_done.Set();
    }
    watchers_.clear();
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

absl::StatusOr<std::unique_ptr<Watcher>> WatchManager::Add(const std::string& key,
                                                           const WatchOptions& opts,
                                                           WatchCallback callback) {
  auto core = core_.lock();
  if (!core || core->closed()) return absl::CancelledError("client closed");
  if (auto st = CheckKey(key, opts); !st.ok()) return st;
  if (opts.start_revision < 0) return absl::InvalidArgumentError("negative start_revision");
  auto st = std::make_shared<WatcherState>();
  st->base.set_key(core->AddPrefix(key));
  st->base.set_range_end(RangeEndFor(*core, key, opts));
  st->base.set_prev_kv(opts.prev_kv);
  st->base.set_progress_notify(opts.progress_notify);
  st->base.set_fragment(opts.fragment);
  if (opts.filter_put) st->base.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  if (opts.filter_delete) st->base.add_filters(etcdserverpb::WatchCreateRequest::NODELETE);
  st->callback = std::move(callback);
  st->created_notify = opts.created_notify;
  st->next_rev = opts.start_revision;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return absl::CancelledError("client closed");
    st->local_id = next_local_id_++;
    watchers_[st->local_id] = st;
    if (stream_up_) {
      pending_.push_back(st);
      SendNextCreateLocked();
    }
    if (!started_) {
      started_ = true;
      thread_ = std::thread([this] { Run(); });
    }
    cv_.notify_all();
  }
  return std::unique_ptr<Watcher>(new Watcher(shared_from_this(), st));
}

void WatchManager::Cancel(const std::shared_ptr<WatcherState>& st) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (st->done) return;
    st->done = true;
    st->user_canceled = true;
    st->final_status = absl::CancelledError("watch canceled by the caller");
    watchers_.erase(st->local_id);
    if (st->watch_id >= 0) {
      by_watch_id_.erase(st->watch_id);
      if (stream_up_) {
        etcdserverpb::WatchRequest req;
        req.mutable_cancel_request()->set_watch_id(st->watch_id);
        EnqueueLocked(std::move(req));
      }
      st->watch_id = -1;
    } else if (!pending_.empty()) {
      // Keep the head if its create is in flight: its created response must still be matched.
      auto begin = pending_.begin() + (create_in_flight_ ? 1 : 0);
      pending_.erase(std::remove(begin, pending_.end(), st), pending_.end());
    }
    st->created_or_done.Set();
  }
  if (!t_in_watch_callback) {
    // Wait for a callback that may be running on the watch thread.
    std::lock_guard<std::mutex> wait(callback_mu_);
  }
}

void WatchManager::RequestProgress() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!stream_up_) return;
  etcdserverpb::WatchRequest req;
  req.mutable_progress_request();
  EnqueueLocked(std::move(req));
}

Revision WatchManager::NextRevision(const WatcherState& st) {
  std::lock_guard<std::mutex> lock(mu_);
  return st.next_rev;
}

bool WatchManager::Done(const WatcherState& st) {
  std::lock_guard<std::mutex> lock(mu_);
  return st.done;
}

absl::Status WatchManager::WaitCreated(const std::shared_ptr<WatcherState>& st,
                                       Clock::time_point deadline) {
  st->created_or_done.WaitUntil(deadline);
  std::lock_guard<std::mutex> lock(mu_);
  if (st->created_once) return absl::OkStatus();
  if (st->done) return st->final_status;
  return absl::DeadlineExceededError("watch not created before the deadline");
}

void WatchManager::EnqueueLocked(etcdserverpb::WatchRequest req) {
  outbox_.push_back(std::move(req));
  cv_.notify_all();
}

void WatchManager::SendNextCreateLocked() {
  while (!create_in_flight_ && !pending_.empty()) {
    auto st = pending_.front();
    if (st->done) {
      pending_.pop_front();
      continue;
    }
    etcdserverpb::WatchRequest req;
    *req.mutable_create_request() = st->base;
    req.mutable_create_request()->set_start_revision(st->next_rev);
    create_in_flight_ = true;
    EnqueueLocked(std::move(req));
  }
}

WatchResponse WatchManager::Convert(const etcdserverpb::WatchResponse& r,
                                    const std::vector<mvccpb::Event>& events) {
  auto core = core_.lock();
  WatchResponse out;
  CopyHeader(r.header(), &out.header);
  out.compact_revision = r.compact_revision();
  out.cancel_reason = r.cancel_reason();
  out.events.reserve(events.size());
  for (const auto& e : events) {
    Event ev;
    ev.type = e.type() == mvccpb::Event::DELETE ? EventType::kDelete : EventType::kPut;
    if (core) {
      ToKeyValue(*core, e.kv(), &ev.kv);
      if (e.has_prev_kv()) {
        ev.has_prev_kv = true;
        ToKeyValue(*core, e.prev_kv(), &ev.prev_kv);
      }
    }
    out.events.push_back(std::move(ev));
  }
  return out;
}

void WatchManager::FinishLocked(const std::shared_ptr<WatcherState>& st, WatchResponse resp,
                                std::vector<Delivery>* out) {
  st->done = true;
  st->final_status = resp.status;
  watchers_.erase(st->local_id);
  if (st->watch_id >= 0) by_watch_id_.erase(st->watch_id);
  st->watch_id = -1;
  st->created_or_done.Set();
  resp.canceled = true;
  out->push_back({st, std::move(resp)});
}

void WatchManager::Handle(const etcdserverpb::WatchResponse& r, std::vector<Delivery>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (r.created()) {
    if (pending_.empty() || !create_in_flight_) return;  // not ours: ignore
    auto st = pending_.front();
    pending_.pop_front();
    create_in_flight_ = false;
    if (r.canceled() || r.watch_id() == -1) {
      if (!st->done) {
        if (IsAuthCancel(r.cancel_reason()) && st->auth_denials == 0) {
          auto core = core_.lock();
          if (core && core->has_credentials()) {
            // Probably an expired token: refresh it and re-create every watcher on a new stream.
            ++st->auth_denials;
            need_auth_refresh_ = true;
            if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
            return;
          }
        }
        WatchResponse resp = Convert(r, {});
        resp.status =
            absl::Status(ErrorKindOf(absl::PermissionDeniedError(r.cancel_reason())) ==
                                 ErrorKind::kPermissionDenied
                             ? absl::StatusCode::kPermissionDenied
                             : absl::StatusCode::kCancelled,
                         r.cancel_reason().empty() ? "watch create rejected" : r.cancel_reason());
        FinishLocked(st, std::move(resp), out);
      }
      SendNextCreateLocked();
      return;
    }
    if (st->done) {
      // Canceled by the caller while the create was in flight.
      etcdserverpb::WatchRequest req;
      req.mutable_cancel_request()->set_watch_id(r.watch_id());
      EnqueueLocked(std::move(req));
    } else {
      st->watch_id = r.watch_id();
      st->auth_denials = 0;
      by_watch_id_[st->watch_id] = st;
      // A watch from "now" starts after the revision the server was at when it created it.
      if (st->next_rev == 0) st->next_rev = r.header().revision() + 1;
      if (!st->created_once) {
        st->created_once = true;
        st->created_or_done.Set();
        if (st->created_notify) {
          WatchResponse resp = Convert(r, {});
          resp.created = true;
          out->push_back({st, std::move(resp)});
        }
      }
    }
    SendNextCreateLocked();
    return;
  }

  if (r.watch_id() == -1 && r.events_size() == 0 && !r.canceled()) {
    // etcd 3.4+: the answer to a stream-wide progress request goes to every watcher.
    for (auto& [id, st] : by_watch_id_) {
      WatchResponse resp = Convert(r, {});
      resp.progress_notify = true;
      out->push_back({st, std::move(resp)});
    }
    return;
  }

  auto it = by_watch_id_.find(r.watch_id());
  if (it == by_watch_id_.end()) return;  // canceled by the caller, or unknown
  auto st = it->second;
  if (r.canceled()) {
    by_watch_id_.erase(it);
    st->watch_id = -1;
    if (r.compact_revision() != 0) {
      WatchResponse resp = Convert(r, {});
      resp.status = absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted");
      FinishLocked(st, std::move(resp), out);
      return;
    }
    if (IsAuthCancel(r.cancel_reason()) && st->auth_denials == 0) {
      auto core = core_.lock();
      if (core && core->has_credentials()) {
        ++st->auth_denials;
        need_auth_refresh_ = true;
        if (stream_ctx_ != nullptr) stream_ctx_->TryCancel();
        return;
      }
    }
    WatchResponse resp = Convert(r, {});
    resp.status = absl::CancelledError(r.cancel_reason().empty() ? "etcdserver: watch canceled"
                                                                 : r.cancel_reason());
    FinishLocked(st, std::move(resp), out);
    return;
  }
  if (r.fragment()) {
    for (const auto& e : r.events()) st->fragments.push_back(e);
    return;
  }
  std::vector<mvccpb::Event> events = std::move(st->fragments);
  st->fragments.clear();
  for (const auto& e : r.events()) events.push_back(e);
  if (events.empty()) {
    if (r.compact_revision() != 0) {
      WatchResponse resp = Convert(r, {});
      resp.status = absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted");
      FinishLocked(st, std::move(resp), out);
      return;
    }
    // A progress notification. It does not advance next_rev: resuming from the last event
    // revision + 1 is always correct, whereas trusting a progress revision would not be if a
    // server sent one early.
    WatchResponse resp = Convert(r, {});
    resp.progress_notify = true;
    out->push_back({st, std::move(resp)});
    return;
  }
  // Drop what was already delivered (a resumed watch must not repeat events).
  std::vector<mvccpb::Event> fresh;
  for (auto& e : events) {
    if (e.kv().mod_revision() >= st->next_rev) fresh.push_back(std::move(e));
  }
  if (fresh.empty()) return;
  st->next_rev = fresh.back().kv().mod_revision() + 1;
  out->push_back({st, Convert(r, fresh)});
}

void WatchManager::Dispatch(std::vector<Delivery>* deliveries) {
  for (auto& d : *deliveries) {
    std::lock_guard<std::mutex> cb_lock(callback_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (d.st->user_canceled || shutdown_) continue;
    }
    if (d.st->callback) {
      t_in_watch_callback = true;
      d.st->callback(d.resp);
      t_in_watch_callback = false;
    }
  }
  deliveries->clear();
}

void WatchManager::Run() {
  int failures = 0;
  while (true) {
    std::shared_ptr<Core> core;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return shutdown_ || !watchers_.empty(); });
      if (shutdown_) return;
      core = core_.lock();
      if (!core || core->closed()) return;
    }
    auto ep = core->Current();
    grpc::ClientContext ctx;
    std::string token = core->PrepareContext(&ctx, Clock::time_point::max(), true);
    auto stream = ep->watch->Watch(&ctx);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) {
        ctx.TryCancel();
      }
      stream_ctx_ = &ctx;
      stream_up_ = true;
      need_auth_refresh_ = false;
      by_watch_id_.clear();
      pending_.clear();
      outbox_.clear();
      create_in_flight_ = false;
      for (auto& [id, st] : watchers_) {
        st->watch_id = -1;
        st->fragments.clear();
        pending_.push_back(st);
      }
      SendNextCreateLocked();
    }
    bool writer_stop = false;
    std::thread writer([&] {
      std::unique_lock<std::mutex> lock(mu_);
      while (true) {
        cv_.wait(lock, [&] { return writer_stop || !outbox_.empty(); });
        if (writer_stop) return;
        etcdserverpb::WatchRequest req = std::move(outbox_.front());
        outbox_.pop_front();
        lock.unlock();
        bool ok = stream->Write(req);
        lock.lock();
        if (!ok) return;
      }
    });
    bool got_any = false;
    etcdserverpb::WatchResponse resp;
    std::vector<Delivery> deliveries;
    while (stream->Read(&resp)) {
      got_any = true;
      Handle(resp, &deliveries);
      Dispatch(&deliveries);
    }
    bool refresh;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stream_up_ = false;
      stream_ctx_ = nullptr;
      writer_stop = true;
      refresh = need_auth_refresh_;
      cv_.notify_all();
    }
    ctx.TryCancel();
    writer.join();
    absl::Status st = FromGrpc(stream->Finish());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) return;
    }
    auto deadline = Clock::now() + core->options().default_timeout;
    if (refresh || IsAuthError(st)) {
      (void)core->RefreshToken(token, deadline);
      failures = got_any ? 0 : failures + 1;
    } else {
      core->ReportFailure(ep);
      failures = got_any ? 0 : failures + 1;
    }
    auto wake =
        Clock::now() + (failures == 0 ? std::chrono::nanoseconds(0) : core->Backoff(failures - 1));
    core.reset();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, wake, [&] { return shutdown_; });
    if (shutdown_) return;
  }
}

}  // namespace cairn::internal

namespace cairn {

Watcher::Watcher(std::shared_ptr<internal::WatchManager> mgr,
                 std::shared_ptr<internal::WatcherState> st)
    : mgr_(std::move(mgr)), state_(std::move(st)) {}

Watcher::~Watcher() { Cancel(); }

void Watcher::Cancel() { mgr_->Cancel(state_); }

absl::Status Watcher::WaitCreated(Clock::time_point deadline) const {
  return mgr_->WaitCreated(state_, deadline);
}

Revision Watcher::next_revision() const { return mgr_->NextRevision(*state_); }

bool Watcher::done() const { return mgr_->Done(*state_); }

absl::StatusOr<std::unique_ptr<Watcher>> WatchClient::Watch(const std::string& key,
                                                            const WatchOptions& opts,
                                                            WatchCallback callback) const {
  if (core_->closed()) return absl::CancelledError("client closed");
  return core_->watch_manager().Add(key, opts, std::move(callback));
}

void WatchClient::RequestProgress() const {
  if (core_->closed()) return;
  core_->watch_manager().RequestProgress();
}

}  // namespace cairn
