#include "cairn/future.h"

#include <condition_variable>
#include <map>

#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/context.hpp>
#include <boost/fiber/mutex.hpp>

namespace cairn {
namespace internal {

bool OnFiber() {
  boost::fibers::context* ctx = boost::fibers::context::active();
  return ctx != nullptr && !ctx->is_context(boost::fibers::type::main_context);
}

namespace {

// A fiber parked in Notification::WaitUntil. Shared with the setter so that a wake-up from another
// thread never touches a destroyed waiter.
struct FiberSlot {
  boost::fibers::mutex mu;
  boost::fibers::condition_variable cv;
  bool set = false;
};

}  // namespace

struct Notification::Impl {
  std::mutex mu;
  std::condition_variable cv;
  bool set = false;
  std::vector<std::shared_ptr<FiberSlot>> fibers;
};

Notification::Notification() : impl_(std::make_unique<Impl>()) {}
Notification::~Notification() = default;

void Notification::Set() {
  std::vector<std::shared_ptr<FiberSlot>> fibers;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->set) return;
    impl_->set = true;
    fibers.swap(impl_->fibers);
    impl_->cv.notify_all();
  }
  for (auto& f : fibers) {
    std::unique_lock<boost::fibers::mutex> lock(f->mu);
    f->set = true;
    f->cv.notify_all();
  }
}

bool Notification::IsSet() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->set;
}

bool Notification::WaitUntil(Clock::time_point deadline) {
  if (!OnFiber()) {
    std::unique_lock<std::mutex> lock(impl_->mu);
    if (deadline == Clock::time_point::max()) {
      impl_->cv.wait(lock, [&] { return impl_->set; });
      return true;
    }
    return impl_->cv.wait_until(lock, deadline, [&] { return impl_->set; });
  }
  auto slot = std::make_shared<FiberSlot>();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->set) return true;
    impl_->fibers.push_back(slot);
  }
  bool ok;
  {
    std::unique_lock<boost::fibers::mutex> lock(slot->mu);
    if (deadline == Clock::time_point::max()) {
      slot->cv.wait(lock, [&] { return slot->set; });
      ok = true;
    } else {
      ok = slot->cv.wait_until(lock, deadline, [&] { return slot->set; });
    }
  }
  if (!ok) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto& v = impl_->fibers;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (*it == slot) {
        v.erase(it);
        break;
      }
    }
    return impl_->set;
  }
  return true;
}

}  // namespace internal

struct CancelToken::State {
  std::mutex mu;
  bool canceled = false;
  uint64_t next_id = 1;
  std::map<uint64_t, std::function<void()>> callbacks;
};

CancelToken CancelToken::Make() {
  CancelToken t;
  t.state_ = std::make_shared<State>();
  return t;
}

void CancelToken::Cancel() const {
  if (!state_) return;
  std::map<uint64_t, std::function<void()>> cbs;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->canceled) return;
    state_->canceled = true;
    cbs.swap(state_->callbacks);
  }
  for (auto& [id, cb] : cbs) cb();
}

bool CancelToken::canceled() const {
  if (!state_) return false;
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->canceled;
}

uint64_t CancelToken::Register(std::function<void()> cb) const {
  if (!state_) return 0;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->canceled) {
      uint64_t id = state_->next_id++;
      state_->callbacks.emplace(id, std::move(cb));
      return id;
    }
  }
  cb();
  return 0;
}

void CancelToken::Unregister(uint64_t id) const {
  if (!state_ || id == 0) return;
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->callbacks.erase(id);
}

}  // namespace cairn
