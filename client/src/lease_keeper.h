// Internal: the client's lease keeper. One LeaseKeepAlive stream carries the keepalives of
// every kept lease; it moves to another endpoint when it breaks. A lease is declared lost only
// when the server says it is gone or when its last confirmed TTL ran out.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "cairn/lease.h"
#include "client/src/core.h"

namespace cairn::internal {

struct KeptLease {
  LeaseId id = 0;
  KeepAliveOptions opts;
  // Guarded by LeaseKeeper::mu_.
  int64_t ttl_seconds = 0;
  Clock::time_point next_send = Clock::time_point::min();
  Clock::time_point deadline = Clock::time_point::max();
  bool stopped = false;
  absl::Status status;
  Notification lost_event;
};

class LeaseKeeper : public std::enable_shared_from_this<LeaseKeeper> {
 public:
  explicit LeaseKeeper(std::weak_ptr<Core> core);
  ~LeaseKeeper();

  std::unique_ptr<LeaseKeepAlive> Add(LeaseId id, KeepAliveOptions opts);
  void Stop(const std::shared_ptr<KeptLease>& l);
  void Shutdown();
  absl::Status Status(const KeptLease& l);
  int64_t Ttl(const KeptLease& l);

 private:
  using Notice = std::function<void()>;
  void Run();
  // Declares expired leases lost; returns the earliest time something is due.
  Clock::time_point CheckLocked(Clock::time_point now, std::vector<int64_t>* to_send,
                                std::vector<Notice>* notices);
  void LoseLocked(const std::shared_ptr<KeptLease>& l, absl::Status why,
                  std::vector<Notice>* notices);
  void Notify(std::vector<Notice>* notices);

  std::weak_ptr<Core> core_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_ = false;
  bool started_ = false;
  std::map<LeaseId, std::shared_ptr<KeptLease>> leases_;
  grpc::ClientContext* stream_ctx_ = nullptr;
  std::mutex callback_mu_;
  std::thread thread_;
};

}  // namespace cairn::internal
