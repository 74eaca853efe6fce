// Internal: the client's watch stream. All watchers share one bidi Watch stream, re-created on
// another endpoint when it breaks; each watcher resumes from its last delivered revision + 1.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cairn/watch.h"
#include "client/src/core.h"

namespace cairn::internal {

struct WatcherState {
  uint64_t local_id = 0;
  etcdserverpb::WatchCreateRequest base;  // namespaced; start_revision set per (re)create
  WatchCallback callback;
  bool created_notify = false;
  // Guarded by WatchManager::mu_.
  int64_t watch_id = -1;  // server id on the current stream, -1 when none
  Revision next_rev = 0;  // next revision to deliver; 0 = "now" (not yet known)
  bool created_once = false;
  bool done = false;
  bool user_canceled = false;
  int auth_denials = 0;
  std::vector<mvccpb::Event> fragments;
  absl::Status final_status;
  Notification created_or_done;
};

class WatchManager : public std::enable_shared_from_this<WatchManager> {
 public:
  explicit WatchManager(std::weak_ptr<Core> core);
  ~WatchManager();

  absl::StatusOr<std::unique_ptr<Watcher>> Add(const std::string& key, const WatchOptions& opts,
                                               WatchCallback callback);
  void Cancel(const std::shared_ptr<WatcherState>& st);
  void RequestProgress();
  void Shutdown();
  Revision NextRevision(const WatcherState& st);
  bool Done(const WatcherState& st);
  absl::Status WaitCreated(const std::shared_ptr<WatcherState>& st, Clock::time_point deadline);

 private:
  struct Delivery {
    std::shared_ptr<WatcherState> st;
    WatchResponse resp;
  };
  void Run();
  void Handle(const etcdserverpb::WatchResponse& r, std::vector<Delivery>* out);
  void SendNextCreateLocked();
  void EnqueueLocked(etcdserverpb::WatchRequest req);
  void FinishLocked(const std::shared_ptr<WatcherState>& st, WatchResponse resp,
                    std::vector<Delivery>* out);
  void Dispatch(std::vector<Delivery>* deliveries);
  WatchResponse Convert(const etcdserverpb::WatchResponse& r,
                        const std::vector<mvccpb::Event>& events);

  std::weak_ptr<Core> core_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_ = false;
  bool started_ = false;
  uint64_t next_local_id_ = 1;
  std::map<uint64_t, std::shared_ptr<WatcherState>> watchers_;  // live, by local id
  std::map<int64_t, std::shared_ptr<WatcherState>> by_watch_id_;
  std::deque<std::shared_ptr<WatcherState>> pending_;  // to (re)create on the current stream
  bool create_in_flight_ = false;
  bool stream_up_ = false;
  bool need_auth_refresh_ = false;
  grpc::ClientContext* stream_ctx_ = nullptr;
  std::deque<etcdserverpb::WatchRequest> outbox_;
  std::mutex callback_mu_;  // held while a callback runs
  std::thread thread_;
};

}  // namespace cairn::internal
