#include "server/api/watch_queue.h"

#include "server/base/check.h"

namespace cairn::api {

void WatchResponseQueue::Push(etcdserverpb::WatchResponse resp, int64_t events_of) {
  const uint64_t seq = front_seq_ + out_.size();
  const size_t bytes = resp.ByteSizeLong();
  bytes_ += bytes;
  out_.push_back(Queued{std::move(resp), bytes});
  if (events_of == kNotEvents) {
    merge_from_ = seq + 1;
    last_events_.clear();  // every entry now points before merge_from_
  } else {
    last_events_[events_of] = seq;
  }
}

bool WatchResponseQueue::Merge(int64_t watch_id, etcdserverpb::WatchResponse& resp, size_t limit) {
  auto it = last_events_.find(watch_id);
  if (it == last_events_.end()) return false;
  const uint64_t seq = it->second;
  const uint64_t first_open = front_seq_ + (in_flight_ ? 1 : 0);
  if (seq < first_open || seq < merge_from_) {  // written, being written, or behind a barrier
    last_events_.erase(it);
    return false;
  }
  Queued& target = out_[seq - front_seq_];
  const size_t bytes = resp.ByteSizeLong();
  if (target.bytes + bytes > limit) return false;
  target.resp.mutable_header()->set_revision(resp.header().revision());
  for (mvccpb::Event& ev : *resp.mutable_events()) *target.resp.add_events() = std::move(ev);
  resp.clear_events();
  // The header and the watch id are counted twice: a slight overestimate, never an underestimate.
  target.bytes += bytes;
  bytes_ += bytes;
  return true;
}

const etcdserverpb::WatchResponse& WatchResponseQueue::StartFront() {
  CAIRN_CHECK(!out_.empty() && !in_flight_);
  in_flight_ = true;
  return out_.front().resp;
}

void WatchResponseQueue::PopFront() {
  CAIRN_CHECK(!out_.empty());
  bytes_ -= out_.front().bytes;
  out_.pop_front();
  ++front_seq_;
  in_flight_ = false;
}

}  // namespace cairn::api
