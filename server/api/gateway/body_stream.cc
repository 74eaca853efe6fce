#include "server/api/gateway/body_stream.h"

#include <google/protobuf/util/json_util.h>
#include <grpc/support/time.h>

#include <cctype>

namespace cairn::api::gateway {

namespace pb = google::protobuf;

namespace {
// How often the reading thread, waiting for body bytes, checks whether it is told to stop.
constexpr int kStopCheckMs = 200;
}  // namespace

ObjectStream::Next ObjectStream::Pop(std::string* object, std::string* error) {
  if (!open_) {
    size_t i = 0;
    while (i < buf_.size() && std::isspace(static_cast<unsigned char>(buf_[i]))) ++i;
    buf_.erase(0, i);
    if (buf_.empty()) return Next::kNeedMore;
    if (buf_[0] != '{') {
      *error = std::string("invalid character '") + buf_[0] + "' looking for beginning of value";
      return Next::kError;
    }
    open_ = true;
    scan_ = 0;
    depth_ = 0;
    in_string_ = false;
    escaped_ = false;
  }
  for (; scan_ < buf_.size(); ++scan_) {
    char c = buf_[scan_];
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if ((c == '}' || c == ']') && --depth_ == 0) {
      *object = buf_.substr(0, scan_ + 1);
      buf_.erase(0, scan_ + 1);
      open_ = false;
      return Next::kObject;
    }
  }
  return buf_.size() > max_object_bytes_ ? Next::kTooLarge : Next::kNeedMore;
}

bool ObjectStream::HasPartial() const {
  if (open_) return true;
  for (char c : buf_) {
    if (!std::isspace(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

bool SplitObjects(std::string_view body, std::vector<std::string>* out, std::string* error) {
  ObjectStream objects(body.size());
  objects.Append(body);
  std::string object;
  for (;;) {
    switch (objects.Pop(&object, error)) {
      case ObjectStream::Next::kObject:
        out->push_back(std::move(object));
        continue;
      case ObjectStream::Next::kError:
        return false;
      case ObjectStream::Next::kNeedMore:
      case ObjectStream::Next::kTooLarge:  // cannot happen: the limit is the whole body
        if (!objects.HasPartial()) return true;
        *error = "unexpected EOF";
        return false;
    }
  }
}

bool FromJson(std::string_view json, pb::Message* m, std::string* error) {
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (json.find_first_not_of(" \t\r\n") == std::string_view::npos) return true;
  auto st = pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()), m, options);
  if (st.ok()) return true;
  // protobuf's message goes on with a caret line under the input; the first line says it all.
  std::string_view what(st.message().data(), st.message().size());
  *error = "invalid JSON body: " + std::string(what.substr(0, what.find('\n')));
  return false;
}

BodyReader::BodyReader(Connection* conn, ObjectStream* objects, const pb::Message* prototype,
                       grpc::CompletionQueue* cq, void* tag)
    : conn_(conn), objects_(objects), prototype_(prototype), cq_(cq), tag_(tag) {}

BodyReader::~BodyReader() {
  {
    absl::MutexLock l(&mu_);  // releasing it wakes a reader waiting for room in the queue
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  alarm_.Cancel();
}

void BodyReader::Start() {
  thread_ = std::thread([this] { Run(); });
}

void BodyReader::Run() {
  std::string bytes, object, error;
  while (!stop_.load()) {
    // Decoded requests first: the bytes already received may hold several.
    switch (objects_->Pop(&object, &error)) {
      case ObjectStream::Next::kObject: {
        std::unique_ptr<pb::Message> m(prototype_->New());
        if (!FromJson(object, m.get(), &error)) return Finish(End::kBodyEnd);
        Push(std::move(m));
        continue;
      }
      case ObjectStream::Next::kError:
        return Finish(End::kBodyEnd);  // etcd's gateway stops at what it cannot decode
      case ObjectStream::Next::kTooLarge:
        return Finish(End::kTooLarge);
      case ObjectStream::Next::kNeedMore:
        break;
    }
    bytes.clear();
    switch (conn_->ReadBodySome(kStopCheckMs, &bytes)) {
      case Connection::BodyResult::kData:
        objects_->Append(bytes);
        break;
      case Connection::BodyResult::kTimedOut:
        break;
      case Connection::BodyResult::kEnd:
        return Finish(End::kBodyEnd);
      case Connection::BodyResult::kClosed:
      case Connection::BodyResult::kMalformed:
        return Finish(End::kPeerGone);
    }
  }
}

void BodyReader::Push(std::unique_ptr<pb::Message> m) {
  absl::MutexLock l(&mu_);
  // A client that sends faster than the call takes waits here (bounded memory).
  mu_.Await(absl::Condition(
      +[](BodyReader* r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(r->mu_) {
        return r->queue_.size() < kMaxQueuedRequests || r->stop_.load();
      },
      this));
  queue_.push_back(std::move(m));
  NotifyLocked();
}

void BodyReader::Finish(End end) {
  absl::MutexLock l(&mu_);
  end_ = end;
  NotifyLocked();
}

void BodyReader::NotifyLocked() {
  if (alarm_set_) {
    news_ = true;  // the pending alarm's delivery rearms it
    return;
  }
  alarm_set_ = true;
  alarm_.Set(cq_, gpr_now(GPR_CLOCK_MONOTONIC), tag_);
}

void BodyReader::AlarmDelivered() {
  absl::MutexLock l(&mu_);
  alarm_set_ = false;
  if (news_) {
    news_ = false;
    NotifyLocked();
  }
}

std::unique_ptr<pb::Message> BodyReader::Pop(End* end) {
  absl::MutexLock l(&mu_);
  if (queue_.empty()) {
    *end = end_;
    return nullptr;
  }
  auto m = std::move(queue_.front());
  queue_.pop_front();
  *end = End::kNone;
  return m;
}

}  // namespace cairn::api::gateway
