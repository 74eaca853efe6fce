// The request side of the gateway's streams (docs/gateway.md, "Streams"): a request body that is
// a sequence of JSON objects ("{...}{...}" or one per line), as etcd's gateway reads it with Go's
// json.Decoder.
//
//   ObjectStream splits bytes into the top-level objects as they arrive (nesting and strings are
//     tracked; each object is then parsed by protobuf). Thread-compatible.
//   BodyReader reads a bidi stream's body (Watch, LeaseKeepAlive) on a thread of its own while the
//     connection's thread runs the call: each object is decoded into the method's request as soon
//     as it is complete and queued, and a grpc::Alarm wakes the call's completion queue. So a
//     client can send a create, read the responses, and later send a cancel on the same chunked
//     request. Thread-safe as documented per method.
//
// Limits (docs/limits.md): one object (or the part of it received so far) is at most
// `max_object_bytes` (the HTTP body limit); beyond, the reader stops with kTooLarge. At most
// kMaxQueuedRequests decoded requests wait for the call; beyond, the reader stops reading the
// socket until the call catches up (TCP flow control holds the client).
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <google/protobuf/message.h>
#include <grpcpp/alarm.h>
#include <grpcpp/completion_queue.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/api/gateway/connection.h"

namespace cairn::api::gateway {

inline constexpr size_t kMaxQueuedRequests = 16;

class ObjectStream {
 public:
  enum class Next { kObject, kNeedMore, kError, kTooLarge };

  explicit ObjectStream(size_t max_object_bytes) : max_object_bytes_(max_object_bytes) {}
  void Append(std::string_view bytes) { buf_.append(bytes); }
  // The next complete object, or why there is none: kNeedMore (wait for bytes), kError with
  // `error` (not an object: Go's message), kTooLarge (the object exceeds the limit).
  Next Pop(std::string* object, std::string* error);
  // True when bytes of an incomplete object are held (at the body's end: "unexpected EOF").
  bool HasPartial() const;

 private:
  const size_t max_object_bytes_;
  std::string buf_;
  size_t scan_ = 0;    // next byte to look at
  bool open_ = false;  // inside an object that starts at buf_[0]
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

// Splits a whole body into its objects (ObjectStream at once). False with `error` when the text
// is not a sequence of objects; the objects before the fault are in *out.
bool SplitObjects(std::string_view body, std::vector<std::string>* out, std::string* error);

// jsonpb as etcd's gateway unmarshals: unknown fields ignored, an empty text is {}. False with
// `error` ("invalid JSON body: ...") otherwise.
bool FromJson(std::string_view json, google::protobuf::Message* m, std::string* error);

class BodyReader {
 public:
  enum class End {
    kNone,      // still reading
    kBodyEnd,   // the body ended (or an object could not be decoded: etcd stops reading there)
    kPeerGone,  // the connection closed or broke before the body's end
    kTooLarge,  // an object exceeded the limit
  };

  // `prototype`: the method's request type. `cq` and `tag`: where the alarm announces news.
  BodyReader(Connection* conn, ObjectStream* objects, const google::protobuf::Message* prototype,
             grpc::CompletionQueue* cq, void* tag);
  // Stops and joins the thread. The alarm is canceled (its tag may still be delivered).
  ~BodyReader();

  // Starts the reading thread. From the connection's thread, once.
  void Start();
  // The next decoded request (null when none is queued); sets *end once the body is over and the
  // queue empty. Call after the alarm's tag was delivered (any `ok`) and whenever convenient.
  std::unique_ptr<google::protobuf::Message> Pop(End* end);
  // Rearms the alarm after its tag was delivered (from the completion queue's thread).
  void AlarmDelivered();

 private:
  void Run();
  void Push(std::unique_ptr<google::protobuf::Message> m);
  void Finish(End end);
  void NotifyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Connection* const conn_;
  ObjectStream* const objects_;
  const google::protobuf::Message* const prototype_;
  grpc::CompletionQueue* const cq_;
  void* const tag_;
  grpc::Alarm alarm_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::deque<std::unique_ptr<google::protobuf::Message>> queue_ ABSL_GUARDED_BY(mu_);
  End end_ ABSL_GUARDED_BY(mu_) = End::kNone;
  bool alarm_set_ ABSL_GUARDED_BY(mu_) = false;
  bool news_ ABSL_GUARDED_BY(mu_) = false;  // something happened while the alarm was set
};

}  // namespace cairn::api::gateway
