#include "bench/load/workloads.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <unordered_map>
#include <utility>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "v3electionpb/v3election.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace cairn::bench {
namespace {

using etcdserverpb::DeleteRangeRequest;
using etcdserverpb::DeleteRangeResponse;
using etcdserverpb::PutRequest;
using etcdserverpb::PutResponse;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;
using etcdserverpb::TxnRequest;
using etcdserverpb::TxnResponse;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// The key number for operation `index`: sequential walks the key space in order, random draws
// uniformly from it.
int64_t KeyNumber(const WorkloadOptions& o, int64_t index, std::mt19937_64& rng) {
  int64_t space = o.key_space_size > 0 ? o.key_space_size : 1;
  if (o.sequential_keys) return index % space;
  return static_cast<int64_t>(rng() % static_cast<uint64_t>(space));
}

// Fills `out` with `size` random bytes, different for every operation: values must not be
// compressible, or a store that compresses (RocksDB) would be flattered against one that does not
// (bbolt). etcd's benchmark also sends random bytes.
void RandomValue(std::mt19937_64& rng, int size, std::string* out) {
  out->resize(size > 0 ? static_cast<size_t>(size) : 0);
  for (size_t i = 0; i < out->size(); i += 8) {
    uint64_t r = rng();
    size_t n = std::min<size_t>(8, out->size() - i);
    std::memcpy(out->data() + i, &r, n);
  }
}

// The end of the range holding every key with prefix p (etcd's GetPrefixRangeEnd).
std::string PrefixEnd(std::string p) {
  while (!p.empty()) {
    unsigned char c = static_cast<unsigned char>(p.back());
    if (c < 0xff) {
      p.back() = static_cast<char>(c + 1);
      return p;
    }
    p.pop_back();
  }
  return std::string(1, '\0');
}

// Completes the grant of a lease for the lease-based clients. Tag kinds are the caller's.
class LeaseGrant {
 public:
  void Begin(etcdserverpb::Lease::Stub* stub, grpc::CompletionQueue* cq,
             std::unique_ptr<grpc::ClientContext> ctx, int64_t ttl_s, void* tag) {
    ctx_ = std::move(ctx);
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl_s);
    reader_ = stub->PrepareAsyncLeaseGrant(ctx_.get(), req, cq);
    reader_->StartCall();
    reader_->Finish(&resp_, &status_, tag);
  }
  const grpc::Status& status() const { return status_; }
  int64_t id() const { return resp_.id(); }

 private:
  std::unique_ptr<grpc::ClientContext> ctx_;
  etcdserverpb::LeaseGrantResponse resp_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::LeaseGrantResponse>> reader_;
};

// lease-keepalive: each client grants one lease, opens a LeaseKeepAlive stream and sends
// keepalives one at a time; an operation is one request/response round trip.
class KeepAliveClient : public ClosedLoopClient {
 public:
  KeepAliveClient(Engine* engine, int id, Budget* budget, int64_t ttl_s)
      : ClosedLoopClient(engine, id, budget),
        stub_(etcdserverpb::Lease::NewStub(channel_)),
        ttl_s_(ttl_s) {}

 protected:
  enum { kGranted = kFirstUserTag, kStreamStarted, kWrite, kRead, kFinish };

  void Setup() override { grant_.Begin(stub_.get(), cq_, NewContext(), ttl_s_, tag(kGranted)); }

  void BeginOp(int64_t) override {
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(grant_.id());
    stream_->Write(req, tag(kWrite));
  }

  void OnRpc(int kind, bool ok) override {
    switch (kind) {
      case kGranted:
        if (!grant_.status().ok()) {
          recorder(kOps).RecordError(grant_.status().error_code());
          Done();
          return;
        }
        stream_ctx_ = NewStreamContext();
        stream_ = stub_->PrepareAsyncLeaseKeepAlive(stream_ctx_.get(), cq_);
        stream_->StartCall(tag(kStreamStarted));
        return;
      case kStreamStarted:
        if (!ok) return Broken();
        Next();
        return;
      case kWrite:
        if (!ok) return Broken();
        resp_.Clear();
        stream_->Read(&resp_, tag(kRead));
        return;
      case kRead:
        if (!ok) return Broken();
        OpDone(grpc::Status::OK);
        return;
      case kFinish:
        if (!closing_) {
          // The stream ended while an operation was in flight: count it as that op's error.
          recorder(kOps).RecordError(status_.ok() ? grpc::StatusCode::UNKNOWN
                                                  : status_.error_code());
        }
        Done();
        return;
    }
  }

  void Close() override {
    if (!stream_) {
      Done();
      return;
    }
    closing_ = true;
    stream_ctx_->TryCancel();
    stream_->Finish(&status_, tag(kFinish));
  }

 private:
  void Broken() { stream_->Finish(&status_, tag(kFinish)); }

  std::unique_ptr<etcdserverpb::Lease::Stub> stub_;
  const int64_t ttl_s_;
  LeaseGrant grant_;
  std::unique_ptr<grpc::ClientContext> stream_ctx_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                                etcdserverpb::LeaseKeepAliveResponse>>
      stream_;
  etcdserverpb::LeaseKeepAliveResponse resp_;
  grpc::Status status_;
  bool closing_ = false;
};

// lock / election: each client grants a lease, then repeatedly acquires and releases one of
// `names` locks (v3lock Lock/Unlock) or leaderships (v3election Campaign/Resign). An operation is
// acquire + release, so its latency includes the wait for other holders: contention.
class ContendClient : public ClosedLoopClient {
 public:
  ContendClient(Engine* engine, int id, Budget* budget, bool election, const WorkloadOptions& o)
      : ClosedLoopClient(engine, id, budget),
        election_(election),
        ttl_s_(o.lease_ttl_s),
        names_(o.lock_names > 0 ? o.lock_names : 1),
        prefix_(o.key_prefix.empty() ? std::string(election ? "bench-election/" : "bench-lock/")
                                     : o.key_prefix),
        lease_stub_(etcdserverpb::Lease::NewStub(channel_)),
        lock_stub_(v3lockpb::Lock::NewStub(channel_)),
        election_stub_(v3electionpb::Election::NewStub(channel_)) {}

 protected:
  enum { kGranted = kFirstUserTag, kAcquired, kReleased };

  void Setup() override {
    grant_.Begin(lease_stub_.get(), cq_, NewContext(), ttl_s_, tag(kGranted));
  }

  void BeginOp(int64_t) override {
    std::string name = prefix_ + std::to_string(rng_() % static_cast<uint64_t>(names_));
    ctx_ = NewContext();
    if (election_) {
      v3electionpb::CampaignRequest req;
      req.set_name(name);
      req.set_lease(grant_.id());
      req.set_value(std::to_string(id_));
      campaign_ = election_stub_->PrepareAsyncCampaign(ctx_.get(), req, cq_);
      campaign_->StartCall();
      campaign_->Finish(&campaign_resp_, &status_, tag(kAcquired));
    } else {
      v3lockpb::LockRequest req;
      req.set_name(name);
      req.set_lease(grant_.id());
      lock_ = lock_stub_->PrepareAsyncLock(ctx_.get(), req, cq_);
      lock_->StartCall();
      lock_->Finish(&lock_resp_, &status_, tag(kAcquired));
    }
  }

  void OnRpc(int kind, bool) override {
    switch (kind) {
      case kGranted:
        if (!grant_.status().ok()) {
          recorder(kOps).RecordError(grant_.status().error_code());
          Done();
          return;
        }
        Next();
        return;
      case kAcquired:
        if (!status_.ok()) return OpDone(status_);
        ctx_ = NewContext();
        if (election_) {
          v3electionpb::ResignRequest req;
          *req.mutable_leader() = campaign_resp_.leader();
          resign_ = election_stub_->PrepareAsyncResign(ctx_.get(), req, cq_);
          resign_->StartCall();
          resign_->Finish(&resign_resp_, &status_, tag(kReleased));
        } else {
          v3lockpb::UnlockRequest req;
          req.set_key(lock_resp_.key());
          unlock_ = lock_stub_->PrepareAsyncUnlock(ctx_.get(), req, cq_);
          unlock_->StartCall();
          unlock_->Finish(&unlock_resp_, &status_, tag(kReleased));
        }
        return;
      case kReleased:
        OpDone(status_);
        return;
    }
  }

 private:
  const bool election_;
  const int64_t ttl_s_;
  const int names_;
  const std::string prefix_;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease_stub_;
  std::unique_ptr<v3lockpb::Lock::Stub> lock_stub_;
  std::unique_ptr<v3electionpb::Election::Stub> election_stub_;
  LeaseGrant grant_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  grpc::Status status_;
  v3lockpb::LockResponse lock_resp_;
  v3lockpb::UnlockResponse unlock_resp_;
  v3electionpb::CampaignResponse campaign_resp_;
  v3electionpb::ResignResponse resign_resp_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v3lockpb::LockResponse>> lock_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v3lockpb::UnlockResponse>> unlock_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v3electionpb::CampaignResponse>> campaign_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v3electionpb::ResignResponse>> resign_;
};

// Progress shared by the watch streams and the main thread.
struct WatchShared {
  std::atomic<int64_t> created{0};
  std::atomic<int64_t> failed_streams{0};
  std::atomic<int64_t> events{0};
  int64_t watchers_total = 0;
  std::atomic<int64_t> events_expected{-1};  // -1 until the puts are done
  std::mutex mu;
  std::condition_variable cv;

  void Notify() {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  }
};

// One Watch stream carrying `keys.size()` watchers (one per key entry). Creates them one after
// another, then reads events; each event's value starts with its put's send time in steady-clock
// nanoseconds, so put -> event latency is measured per event per watcher.
class WatchStreamClient : public Client {
 public:
  // ranges: (key, range_end) of each watcher; range_end empty for a single key.
  WatchStreamClient(Engine* engine, int id, WatchShared* shared,
                    std::vector<std::pair<std::string, std::string>> ranges)
      : Client(engine, id),
        stub_(etcdserverpb::Watch::NewStub(channel_)),
        shared_(shared),
        ranges_(std::move(ranges)) {}

  void Start() override {
    ctx_ = NewStreamContext();
    stream_ = stub_->PrepareAsyncWatch(ctx_.get(), cq_);
    pending_ = 1;
    stream_->StartCall(tag(kStarted));
  }

  // Thread-safe: ends the stream (its handlers then finish it and call Done).
  void Cancel() {
    closing_.store(true);
    ctx_->TryCancel();
  }

  void OnEvent(int kind, bool ok) override {
    if (kind == kStartTag) return Start();
    if (kind == kFinished) {
      if (!closing_.load()) {
        recorder(kEvents).RecordError(status_.ok() ? grpc::StatusCode::UNKNOWN
                                                   : status_.error_code());
        shared_->failed_streams.fetch_add(1);
        shared_->Notify();
      }
      Done();
      return;
    }
    --pending_;
    if (!ok) broken_ = true;
    if (!broken_) {
      if (kind == kStarted) {
        IssueRead();
        WriteNextCreate();
      } else if (kind == kWrite) {
        WriteNextCreate();
      } else if (kind == kRead) {
        Handle();
        IssueRead();
      }
    }
    if (broken_ && pending_ == 0) stream_->Finish(&status_, tag(kFinished));
  }

 private:
  enum { kStarted = kFirstUserTag, kWrite, kRead, kFinished };

  void IssueRead() {
    resp_.Clear();
    ++pending_;
    stream_->Read(&resp_, tag(kRead));
  }

  void WriteNextCreate() {
    if (next_create_ >= ranges_.size()) return;
    etcdserverpb::WatchRequest req;
    const auto& [key, range_end] = ranges_[next_create_++];
    req.mutable_create_request()->set_key(key);
    req.mutable_create_request()->set_range_end(range_end);
    ++pending_;
    stream_->Write(req, tag(kWrite));
  }

  void Handle() {
    if (resp_.created()) {
      if (resp_.canceled()) {
        recorder(kEvents).RecordError(grpc::StatusCode::FAILED_PRECONDITION);
        shared_->failed_streams.fetch_add(1);
        shared_->Notify();
        return;
      }
      if (shared_->created.fetch_add(1) + 1 == shared_->watchers_total) shared_->Notify();
    }
    int64_t now = NowNs();
    for (const auto& ev : resp_.events()) {
      int64_t sent = std::strtoll(ev.kv().value().c_str(), nullptr, 10);
      if (sent > 0 && sent <= now) recorder(kEvents).RecordOk(now - sent);
      int64_t n = shared_->events.fetch_add(1) + 1;
      if (n == shared_->events_expected.load()) shared_->Notify();
    }
  }

  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  WatchShared* const shared_;
  const std::vector<std::pair<std::string, std::string>> ranges_;
  size_t next_create_ = 0;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<
      grpc::ClientAsyncReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
      stream_;
  etcdserverpb::WatchResponse resp_;
  grpc::Status status_;
  int pending_ = 0;
  bool broken_ = false;
  std::atomic<bool> closing_{false};
};

using PutClient = UnaryClient<PutRequest, PutResponse>;

PutClient::Call PutCall(etcdserverpb::KV::Stub* stub) {
  return [stub](grpc::ClientContext* ctx, const PutRequest& req, grpc::CompletionQueue* cq) {
    return stub->PrepareAsyncPut(ctx, req, cq);
  };
}

// Connects and starts the engine; returns the error message or "".
std::string Open(Engine* engine, const WorkloadOptions& o) {
  std::string err = engine->Connect(o.dial_timeout_s);
  if (!err.empty()) return err;
  engine->StartThreads();
  return "";
}

// Runs `clients` closed-loop clients made by make(id, budget) under the options' budget.
template <typename Make>
Result RunClosedLoop(const WorkloadOptions& o, Make make) {
  Result r;
  Engine engine(o.engine);
  r.error = Open(&engine, o);
  if (!r.error.empty()) return r;
  Budget budget(o.duration_s > 0 ? 0 : o.total, o.duration_s, o.rate);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < o.clients; ++i) clients.push_back(make(engine, i, &budget));
  budget.Start();
  Clock::time_point start = Clock::now();
  for (auto& c : clients) engine.Launch(c.get());
  engine.WaitIdle();
  double elapsed = SecondsSince(start);
  engine.Stop();
  r.ops = Summarize(engine.recorders(kOps), elapsed);
  return r;
}

std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> KvStubs(Engine& engine) {
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (int i = 0; i < engine.conns(); ++i) {
    stubs.push_back(etcdserverpb::KV::NewStub(engine.channel(i)));
  }
  return stubs;
}

Result RunKv(const std::string& name, const WorkloadOptions& o) {
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  return RunClosedLoop(o, [&](Engine& engine, int id, Budget* budget) -> std::unique_ptr<Client> {
    if (stubs.empty()) stubs = KvStubs(engine);
    etcdserverpb::KV::Stub* stub = stubs[id % engine.conns()].get();
    if (name == "put") {
      return std::make_unique<PutClient>(
          &engine, id, budget,
          [&o](int64_t index, std::mt19937_64& rng, PutRequest* req) {
            req->set_key(MakeKey(o, KeyNumber(o, index, rng)));
            RandomValue(rng, o.val_size, req->mutable_value());
          },
          PutCall(stub));
    }
    if (name == "range") {
      RangeRequest proto;
      proto.set_key(o.key.empty() ? MakeKey(o, 0) : o.key);
      if (o.prefix) proto.set_range_end(PrefixEnd(proto.key()));
      proto.set_limit(o.limit);
      proto.set_serializable(o.consistency == "s");
      return std::make_unique<UnaryClient<RangeRequest, RangeResponse>>(
          &engine, id, budget,
          [proto](int64_t, std::mt19937_64&, RangeRequest* req) {
            if (req->key().empty()) *req = proto;
          },
          [stub](grpc::ClientContext* ctx, const RangeRequest& req, grpc::CompletionQueue* cq) {
            return stub->PrepareAsyncRange(ctx, req, cq);
          });
    }
    if (name == "delete") {
      return std::make_unique<UnaryClient<DeleteRangeRequest, DeleteRangeResponse>>(
          &engine, id, budget,
          [&o](int64_t index, std::mt19937_64& rng, DeleteRangeRequest* req) {
            req->set_key(MakeKey(o, KeyNumber(o, index, rng)));
          },
          [stub](grpc::ClientContext* ctx, const DeleteRangeRequest& req,
                 grpc::CompletionQueue* cq) {
            return stub->PrepareAsyncDeleteRange(ctx, req, cq);
          });
    }
    // txn-put: txn_ops puts in one Txn on consecutive key numbers (from a random start unless
    // sequential), so that no key repeats within a txn (etcd refuses duplicate keys).
    return std::make_unique<UnaryClient<TxnRequest, TxnResponse>>(
        &engine, id, budget,
        [&o](int64_t index, std::mt19937_64& rng, TxnRequest* req) {
          req->Clear();
          const int64_t space = o.key_space_size > 0 ? o.key_space_size : 1;
          const int64_t first = KeyNumber(o, index * o.txn_ops, rng);
          for (int j = 0; j < o.txn_ops; ++j) {
            PutRequest* put = req->add_success()->mutable_request_put();
            put->set_key(MakeKey(o, (first + j) % space));
            RandomValue(rng, o.val_size, put->mutable_value());
          }
        },
        [stub](grpc::ClientContext* ctx, const TxnRequest& req, grpc::CompletionQueue* cq) {
          return stub->PrepareAsyncTxn(ctx, req, cq);
        });
  });
}

// The watchers of the watch workload: each stream's watched ranges, and how many watchers a put
// to watched key number n (see WatchPutKey) reaches.
struct WatchPlan {
  std::vector<std::vector<std::pair<std::string, std::string>>> ranges;  // by stream
  std::vector<int64_t> watchers_on_key;                                  // by key number
};

WatchPlan PlanWatchers(const WorkloadOptions& o) {
  const int key_total = o.watched_key_total > 0 ? o.watched_key_total : 1;
  WatchPlan plan;
  plan.watchers_on_key.assign(key_total, 0);
  std::unordered_map<std::string, int64_t> on_prefix;
  for (int s = 0; s < o.streams; ++s) {
    plan.ranges.emplace_back();
    for (int w = 0; w < o.watchers_per_stream; ++w) {
      const int64_t g = static_cast<int64_t>(s) * o.watchers_per_stream + w;
      std::string key = MakeKey(o, g % key_total);
      if (!o.watch_prefix) {
        ++plan.watchers_on_key[g % key_total];
        plan.ranges.back().emplace_back(std::move(key), "");
        continue;
      }
      const size_t trim = static_cast<size_t>((g / key_total) % o.prefix_nesting);
      const size_t floor = std::max<size_t>(o.key_prefix.size(), 1);
      key.resize(std::max(floor, key.size() > trim ? key.size() - trim : 0));
      ++on_prefix[key];
      plan.ranges.back().emplace_back(key, PrefixEnd(key));
    }
  }
  if (o.watch_prefix) {
    for (int n = 0; n < key_total; ++n) {
      const std::string key = MakeKey(o, n);
      for (size_t len = 1; len <= key.size(); ++len) {
        auto it = on_prefix.find(key.substr(0, len));
        if (it != on_prefix.end()) plan.watchers_on_key[n] += it->second;
      }
    }
  }
  return plan;
}

// The key of put number `index`: the watched key itself, or a key under it for prefix watchers.
std::string WatchPutKey(const WorkloadOptions& o, int64_t index) {
  const int key_total = o.watched_key_total > 0 ? o.watched_key_total : 1;
  std::string key = MakeKey(o, index % key_total);
  if (o.watch_prefix) {
    const int64_t space = o.key_space_size > 0 ? o.key_space_size : 1;
    key += "/" + std::to_string(index % space);
  }
  return key;
}

Result RunWatch(const WorkloadOptions& o) {
  Result r;
  Engine engine(o.engine);
  r.error = Open(&engine, o);
  if (!r.error.empty()) return r;
  const int key_total = o.watched_key_total > 0 ? o.watched_key_total : 1;
  WatchPlan plan = PlanWatchers(o);
  const std::vector<int64_t>& watchers_on_key = plan.watchers_on_key;

  WatchShared shared;
  shared.watchers_total = static_cast<int64_t>(o.streams) * o.watchers_per_stream;
  std::vector<std::unique_ptr<WatchStreamClient>> streams;
  for (int s = 0; s < o.streams; ++s) {
    streams.push_back(
        std::make_unique<WatchStreamClient>(&engine, s, &shared, std::move(plan.ranges[s])));
  }

  Clock::time_point start = Clock::now();
  for (auto& s : streams) engine.Launch(s.get(), 1);
  {
    std::unique_lock<std::mutex> lock(shared.mu);
    shared.cv.wait_for(lock, std::chrono::duration<double>(o.engine.request_timeout_s), [&] {
      return shared.created.load() >= shared.watchers_total || shared.failed_streams.load() > 0;
    });
  }
  bool all_created = shared.created.load() >= shared.watchers_total;
  if (all_created) r.watch_create_s = SecondsSince(start);

  if (all_created && o.hold_ms > 0) {
    std::fprintf(stderr, "cairn-bench: all %lld watchers created\n",
                 static_cast<long long>(shared.watchers_total));
    std::fflush(stderr);
    std::this_thread::sleep_for(std::chrono::milliseconds(o.hold_ms));
  }

  double put_elapsed = 0;
  Clock::time_point puts_start = Clock::now();
  if (all_created && o.put_total > 0) {
    int64_t expected = 0;
    for (int64_t i = 0; i < o.put_total; ++i) expected += watchers_on_key[i % key_total];
    std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs = KvStubs(engine);
    Budget budget(o.put_total, 0, o.put_rate);
    std::vector<std::unique_ptr<Client>> putters;
    const int putter_count = o.clients > 0 ? o.clients : 1;
    for (int i = 0; i < putter_count; ++i) {
      int id = o.streams + i;
      putters.push_back(std::make_unique<PutClient>(
          &engine, id, &budget,
          [&o](int64_t index, std::mt19937_64&, PutRequest* req) {
            req->set_key(WatchPutKey(o, index));
            std::string v = std::to_string(NowNs());
            if (static_cast<int>(v.size()) < o.val_size) v.resize(o.val_size, '.');
            req->set_value(std::move(v));
          },
          PutCall(stubs[id % engine.conns()].get())));
    }
    budget.Start();
    for (auto& p : putters) engine.Launch(p.get(), 0);
    engine.WaitIdle(0);
    put_elapsed = SecondsSince(puts_start);
    r.events_expected = expected;
    shared.events_expected.store(expected);
    std::unique_lock<std::mutex> lock(shared.mu);
    shared.cv.wait_for(lock, std::chrono::duration<double>(o.drain_timeout_s), [&] {
      return shared.events.load() >= expected || shared.failed_streams.load() > 0;
    });
  }
  double events_elapsed = SecondsSince(puts_start);
  for (auto& s : streams) s->Cancel();
  engine.WaitIdleFor(o.engine.request_timeout_s, 1);
  engine.Stop();
  r.ops = Summarize(engine.recorders(kOps), put_elapsed);
  r.events = Summarize(engine.recorders(kEvents), events_elapsed);
  return r;
}

// scan: one client reads every key from --key (default: the first generated key) to the end of
// the key space, --limit keys a page (etcdctl's paginated get: each page from the key after the
// last one, at the first page's revision). An op is a page; the Result counts the keys. With
// --duration it stops after that many seconds, finished or not (keys_read tells how far it got).
Result RunScan(const WorkloadOptions& o) {
  Result r;
  Engine engine(o.engine);
  r.error = Open(&engine, o);
  if (!r.error.empty()) return r;
  auto stub = etcdserverpb::KV::NewStub(engine.channel(0));
  Recorder rec;
  RangeRequest req;
  req.set_key(o.key.empty() ? MakeKey(o, 0) : o.key);
  req.set_range_end(std::string(1, '\0'));
  req.set_limit(o.limit > 0 ? o.limit : 1000);
  req.set_serializable(o.consistency == "s");
  Clock::time_point start = Clock::now();
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(o.engine.request_timeout_s * 1000)));
    if (!engine.token().empty()) ctx.AddMetadata("token", engine.token());
    RangeResponse resp;
    Clock::time_point t0 = Clock::now();
    grpc::Status st = stub->Range(&ctx, req, &resp);
    if (!st.ok()) {
      rec.RecordError(st.error_code());
      break;
    }
    rec.RecordOk(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
    r.keys_read += resp.kvs_size();
    if (!resp.more() || resp.kvs_size() == 0) break;
    if (o.duration_s > 0 && SecondsSince(start) >= o.duration_s) break;
    if (req.revision() == 0) req.set_revision(resp.header().revision());
    req.set_key(resp.kvs(resp.kvs_size() - 1).key() + std::string(1, '\0'));
  }
  r.ops = Summarize({&rec}, SecondsSince(start));
  return r;
}

}  // namespace

std::string MakeKey(const WorkloadOptions& o, int64_t n) {
  std::string digits = std::to_string(n);
  int width = o.key_size - static_cast<int>(o.key_prefix.size());
  if (static_cast<int>(digits.size()) < width) {
    digits.insert(0, static_cast<size_t>(width) - digits.size(), '0');
  }
  return o.key_prefix + digits;
}

std::optional<Result> RunWorkload(const std::string& name, const WorkloadOptions& o) {
  if (name == "put" || name == "range" || name == "delete" || name == "txn-put") {
    return RunKv(name, o);
  }
  if (name == "watch") return RunWatch(o);
  if (name == "scan") return RunScan(o);
  if (name == "lease-keepalive") {
    return RunClosedLoop(o, [&](Engine& engine, int id, Budget* budget) -> std::unique_ptr<Client> {
      return std::make_unique<KeepAliveClient>(&engine, id, budget, o.lease_ttl_s);
    });
  }
  if (name == "lock" || name == "election") {
    bool election = name == "election";
    return RunClosedLoop(o, [&](Engine& engine, int id, Budget* budget) -> std::unique_ptr<Client> {
      return std::make_unique<ContendClient>(&engine, id, budget, election, o);
    });
  }
  return std::nullopt;
}

Result RunFsyncProbe(const std::string& dir, int64_t size_bytes, int block_bytes) {
  Result r;
  std::string path = dir + "/cairn-bench-fsync-probe." + std::to_string(getpid());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    r.error = "open " + path + ": " + std::strerror(errno);
    return r;
  }
  Recorder rec;
  std::string block(static_cast<size_t>(block_bytes), 'f');
  int64_t writes = block_bytes > 0 ? size_bytes / block_bytes : 0;
  Clock::time_point start = Clock::now();
  for (int64_t i = 0; i < writes; ++i) {
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
      r.error = std::string("write: ") + std::strerror(errno);
      break;
    }
    Clock::time_point t0 = Clock::now();
    if (fdatasync(fd) != 0) {
      r.error = std::string("fdatasync: ") + std::strerror(errno);
      break;
    }
    rec.RecordOk(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
  }
  double elapsed = SecondsSince(start);
  close(fd);
  unlink(path.c_str());
  r.ops = Summarize({&rec}, elapsed);
  return r;
}

}  // namespace cairn::bench
