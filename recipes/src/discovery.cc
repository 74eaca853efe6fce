#include "cairn/recipes/discovery.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <thread>

#include "absl/random/random.h"
#include "src/async_acquire.h"
#include "src/internal.h"

namespace cairn::recipes {

namespace {

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

void SkipSpace(const std::string& s, size_t* i) {
  while (*i < s.size() && (s[*i] == ' ' || s[*i] == '\n' || s[*i] == '\t' || s[*i] == '\r')) {
    ++*i;
  }
}

// Parses a JSON string at s[*i] (which must be '"'); appends UTF-8.
bool ParseString(const std::string& s, size_t* i, std::string* out) {
  if (*i >= s.size() || s[*i] != '"') return false;
  ++*i;
  while (*i < s.size()) {
    char c = s[(*i)++];
    if (c == '"') return true;
    if (c != '\\') {
      *out += c;
      continue;
    }
    if (*i >= s.size()) return false;
    char e = s[(*i)++];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        *out += e;
        break;
      case 'n':
        *out += '\n';
        break;
      case 't':
        *out += '\t';
        break;
      case 'r':
        *out += '\r';
        break;
      case 'b':
        *out += '\b';
        break;
      case 'f':
        *out += '\f';
        break;
      case 'u': {
        if (*i + 4 > s.size()) return false;
        unsigned cp = 0;
        if (std::sscanf(s.substr(*i, 4).c_str(), "%4x", &cp) != 1) return false;
        *i += 4;
        if (cp < 0x80) {
          *out += static_cast<char>(cp);
        } else if (cp < 0x800) {
          *out += static_cast<char>(0xC0 | (cp >> 6));
          *out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
          *out += static_cast<char>(0xE0 | (cp >> 12));
          *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
          *out += static_cast<char>(0x80 | (cp & 0x3F));
        }
        break;
      }
      default:
        return false;
    }
  }
  return false;
}

// Skips any JSON value (for fields we do not interpret); returns its raw text.
bool SkipValue(const std::string& s, size_t* i, std::string* raw) {
  size_t start = *i;
  if (*i < s.size() && s[*i] == '"') {
    std::string ignored;
    if (!ParseString(s, i, &ignored)) return false;
  } else {
    int depth = 0;
    while (*i < s.size()) {
      char c = s[*i];
      if (c == '"') {
        std::string ignored;
        if (!ParseString(s, i, &ignored)) return false;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
      }
      if (c == ',' && depth == 0) break;
      ++*i;
    }
  }
  *raw = s.substr(start, *i - start);
  while (!raw->empty() && (raw->back() == ' ' || raw->back() == '\n')) raw->pop_back();
  return true;
}

}  // namespace

std::string EncodeEndpoint(const ServiceEndpoint& endpoint) {
  return "{\"Addr\":" + JsonString(endpoint.address) + ",\"Metadata\":" +
         (endpoint.metadata.empty() ? std::string("null") : JsonString(endpoint.metadata)) + "}";
}

absl::StatusOr<ServiceEndpoint> DecodeEndpoint(const std::string& json) {
  auto bad = [] { return absl::InvalidArgumentError("discovery: not an endpoint JSON object"); };
  size_t i = 0;
  SkipSpace(json, &i);
  if (i >= json.size() || json[i] != '{') return bad();
  ++i;
  ServiceEndpoint ep;
  bool have_addr = false;
  while (true) {
    SkipSpace(json, &i);
    if (i < json.size() && json[i] == '}') break;
    std::string name;
    if (!ParseString(json, &i, &name)) return bad();
    SkipSpace(json, &i);
    if (i >= json.size() || json[i] != ':') return bad();
    ++i;
    SkipSpace(json, &i);
    if (name == "Addr" || (name == "Metadata" && i < json.size() && json[i] == '"')) {
      std::string v;
      if (!ParseString(json, &i, &v)) return bad();
      if (name == "Addr") {
        ep.address = std::move(v);
        have_addr = true;
      } else {
        ep.metadata = std::move(v);
      }
    } else {
      std::string raw;
      if (!SkipValue(json, &i, &raw)) return bad();
      if (name == "Metadata" && raw != "null") ep.metadata = raw;  // non-string: raw JSON
    }
    SkipSpace(json, &i);
    if (i < json.size() && json[i] == ',') {
      ++i;
      continue;
    }
    if (i < json.size() && json[i] == '}') break;
    return bad();
  }
  if (!have_addr) return bad();
  return ep;
}

namespace {

const std::string& KeyName(const ServiceEndpoint& endpoint) {
  return endpoint.id.empty() ? endpoint.address : endpoint.id;
}

absl::Status CheckEndpoint(const std::string& service, const ServiceEndpoint& endpoint) {
  if (absl::Status st = internal::CheckName(service, "discovery"); !st.ok()) return st;
  if (endpoint.address.empty()) return absl::InvalidArgumentError("discovery: empty address");
  if (KeyName(endpoint).find('/') != std::string::npos) {
    return absl::InvalidArgumentError(endpoint.id.empty()
                                          ? "discovery: address must not contain '/' (set an id)"
                                          : "discovery: id must not contain '/'");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterEndpoint(const Session& session, const std::string& service,
                              const ServiceEndpoint& endpoint, const CallOptions& call) {
  if (absl::Status st = CheckEndpoint(service, endpoint); !st.ok()) return st;
  if (absl::Status st = internal::CheckSession(session); !st.ok()) return st;
  PutOptions po;
  po.lease = session.lease();
  return session.kv()
      .Put(service + "/" + KeyName(endpoint), EncodeEndpoint(endpoint), po, call)
      .status();
}

Future<Completed> RegisterEndpointAsync(const Session& session, const std::string& service,
                                        const ServiceEndpoint& endpoint, const CallOptions& call) {
  if (absl::Status st = CheckEndpoint(service, endpoint); !st.ok()) {
    return MakeReadyFuture<Completed>(st);
  }
  if (absl::Status st = internal::CheckSession(session); !st.ok()) {
    return MakeReadyFuture<Completed>(st);
  }
  PutOptions po;
  po.lease = session.lease();
  return internal::Map<PutResponse, Completed>(
      session.kv().PutAsync(service + "/" + KeyName(endpoint), EncodeEndpoint(endpoint), po, call),
      [](absl::StatusOr<PutResponse> r) -> absl::StatusOr<Completed> {
        if (!r.ok()) return r.status();
        return Completed{};
      });
}

absl::Status UnregisterEndpoint(const Kv& kv, const std::string& service,
                                const std::string& id_or_address, const CallOptions& call) {
  if (absl::Status st = internal::CheckName(service, "discovery"); !st.ok()) return st;
  if (id_or_address.empty()) return absl::InvalidArgumentError("discovery: empty address");
  return kv.Delete(service + "/" + id_or_address, {}, call).status();
}

// ---- ServiceRegistration -----------------------------------------------------------------

namespace {

constexpr std::chrono::milliseconds kRegisterBackoffMin(100);
constexpr std::chrono::milliseconds kRegisterBackoffMax(2000);

}  // namespace

struct ServiceRegistration::State {
  const Client* client = nullptr;
  std::string service;
  ServiceEndpoint endpoint;
  ServiceRegistrationOptions options;
  CancelToken stop = CancelToken::Make();
  std::thread thread;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool closing = false;
  std::shared_ptr<Session> session;  // the registered one, null while not registered
  int64_t registrations = 0;
  absl::Status status;

  // A new session and the key on its lease.
  absl::Status RegisterOnce(const CallOptions& call) {
    SessionOptions so;
    so.ttl_seconds = options.ttl_seconds;
    auto s = Session::Create(*client, so, call);
    if (!s.ok()) return s.status();
    if (absl::Status st = RegisterEndpoint(**s, service, endpoint, call); !st.ok()) {
      (void)(*s)->Close();
      return st;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      session = *s;
      ++registrations;
      status = absl::OkStatus();
    }
    if (options.on_registered) options.on_registered((*s)->lease());
    return absl::OkStatus();
  }

  // Waits for the session to end, then registers again (with backoff) until Close().
  void Run() {
    CallOptions call;
    call.cancel = stop;
    std::chrono::milliseconds backoff = kRegisterBackoffMin;
    while (!stop.canceled()) {
      std::shared_ptr<Session> s;
      {
        std::lock_guard<std::mutex> lock(mu);
        s = session;
      }
      if (s != nullptr) {
        absl::Status ended = s->Wait(call);
        if (stop.canceled()) return;
        {
          std::lock_guard<std::mutex> lock(mu);
          session.reset();
          status = ended;
        }
        if (options.on_lost) options.on_lost(ended);
        continue;
      }
      absl::Status st = RegisterOnce(call);
      if (st.ok()) {
        backoff = kRegisterBackoffMin;
        continue;
      }
      std::unique_lock<std::mutex> lock(mu);
      if (!stop.canceled()) status = st;
      // A retry delay (the server is down or refusing), cut short by Close().
      cv.wait_for(lock, backoff, [&] { return closing; });
      backoff = std::min(backoff * 2, kRegisterBackoffMax);
    }
  }
};

absl::StatusOr<std::unique_ptr<ServiceRegistration>> ServiceRegistration::Start(
    const Client& client, std::string service, ServiceEndpoint endpoint,
    ServiceRegistrationOptions options, const CallOptions& call) {
  if (absl::Status st = CheckEndpoint(service, endpoint); !st.ok()) return st;
  if (options.ttl_seconds <= 0) {
    return absl::InvalidArgumentError("discovery: ttl_seconds must be > 0");
  }
  std::unique_ptr<ServiceRegistration> r(new ServiceRegistration());
  r->state_ = std::make_shared<State>();
  State* s = r->state_.get();
  s->client = &client;
  s->service = std::move(service);
  s->endpoint = std::move(endpoint);
  s->options = std::move(options);
  if (absl::Status st = s->RegisterOnce(call); !st.ok()) return st;
  s->thread = std::thread([s] { s->Run(); });
  return r;
}

ServiceRegistration::~ServiceRegistration() { (void)Close(); }

absl::Status ServiceRegistration::Close(const CallOptions& call) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->closing) return absl::OkStatus();
    state_->closing = true;
  }
  state_->stop.Cancel();
  state_->cv.notify_all();
  if (state_->thread.joinable()) state_->thread.join();
  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    s.swap(state_->session);
    state_->status = absl::FailedPreconditionError("discovery: registration closed");
  }
  if (s == nullptr) return absl::OkStatus();
  return s->Close(call);
}

bool ServiceRegistration::registered() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->session != nullptr && state_->session->alive();
}

int64_t ServiceRegistration::registrations() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->registrations;
}

absl::Status ServiceRegistration::status() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (state_->session != nullptr) return state_->session->status();
  return state_->status;
}

// ---- ServiceResolver ---------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ServiceResolver>> ServiceResolver::Start(const Client& client,
                                                                        std::string service,
                                                                        PickPolicy policy,
                                                                        const CallOptions& call) {
  if (absl::Status st = internal::CheckName(service, "discovery"); !st.ok()) return st;
  std::unique_ptr<ServiceResolver> r(new ServiceResolver());
  r->prefix_ = service + "/";
  r->policy_ = policy;
  auto cache = PrefixCache::Start(client, r->prefix_, call);
  if (!cache.ok()) return cache.status();
  r->cache_ = std::move(*cache);
  // The waits' one listener; the cache (destroyed first by ~ServiceResolver) removes it.
  ServiceResolver* raw = r.get();
  r->cache_->AddListener([raw](const std::vector<Event>&, Revision, bool) { raw->CheckWaiters(); });
  return r;
}

ServiceResolver::~ServiceResolver() {
  cache_.reset();  // no listener runs after this
  std::vector<Promise<bool>> pending;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    for (Waiter& w : waiters_) pending.push_back(w.promise);
    waiters_.clear();
  }
  for (auto& p : pending) p.Set(absl::CancelledError("resolver destroyed"));
}

void ServiceResolver::CheckWaiters() {
  std::vector<Promise<bool>> ready;
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    if (waiters_.empty()) return;
    const std::vector<ServiceEndpoint> eps = Endpoints();
    auto it = waiters_.begin();
    while (it != waiters_.end()) {
      if (it->done->load()) {
        it = waiters_.erase(it);
      } else if (it->pred(eps)) {
        ready.push_back(it->promise);
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Outside the lock: a continuation may start another wait.
  for (auto& p : ready) p.Set(true);
}

absl::StatusOr<ServiceEndpoint> ServiceResolver::Decode(const KeyValue& kv) const {
  auto ep = DecodeEndpoint(kv.value);
  if (ep.ok()) ep->id = kv.key.substr(prefix_.size());
  return ep;
}

std::vector<ServiceEndpoint> ServiceResolver::Endpoints() const {
  std::vector<ServiceEndpoint> out;
  for (const KeyValue& kv : cache_->List()) {
    auto ep = Decode(kv);
    if (ep.ok()) out.push_back(std::move(*ep));
  }
  return out;
}

absl::StatusOr<ServiceEndpoint> ServiceResolver::Pick() {
  std::vector<ServiceEndpoint> up;
  Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  for (const KeyValue& kv : cache_->List()) {
    auto ep = Decode(kv);
    if (!ep.ok()) continue;
    auto d = down_until_.find(ep->address);
    if (d != down_until_.end()) {
      // Down until the time passes or the instance registers again (a newer mod revision).
      bool reregistered = kv.mod_revision > down_at_revision_[ep->address];
      if (now < d->second && !reregistered) continue;
      down_until_.erase(d);
      down_at_revision_.erase(ep->address);
    }
    up.push_back(std::move(*ep));
  }
  if (up.empty()) {
    return absl::UnavailableError("discovery: no instance of " + prefix_ + " is up");
  }
  switch (policy_) {
    case PickPolicy::kRoundRobin:
      return up[next_++ % up.size()];
    case PickPolicy::kRandom: {
      static absl::BitGen* gen = new absl::BitGen();
      return up[absl::Uniform<size_t>(*gen, 0, up.size())];
    }
    case PickPolicy::kSticky:
      if (sticky_.has_value()) {
        for (const auto& ep : up) {
          if (ep.address == *sticky_) return ep;
        }
      }
      sticky_ = up[0].address;
      return up[0];
  }
  return up[0];
}

void ServiceResolver::MarkDown(const std::string& address, std::chrono::milliseconds duration) {
  Revision rev = 0;
  for (const KeyValue& kv : cache_->List()) {
    auto ep = Decode(kv);
    if (ep.ok() && ep->address == address) rev = std::max(rev, kv.mod_revision);
  }
  std::lock_guard<std::mutex> lock(mu_);
  down_until_[address] = Clock::now() + duration;
  down_at_revision_[address] = rev;
  if (sticky_.has_value() && *sticky_ == address) sticky_.reset();
}

uint64_t ServiceResolver::AddListener(std::function<void(const std::vector<ServiceEndpoint>&)> cb) {
  return cache_->AddListener(
      [this, cb = std::move(cb)](const std::vector<Event>&, Revision, bool) { cb(Endpoints()); });
}

void ServiceResolver::RemoveListener(uint64_t id) { cache_->RemoveListener(id); }

absl::Status ServiceResolver::WaitFor(
    const std::function<bool(const std::vector<ServiceEndpoint>&)>& pred, const CallOptions& call) {
  return WaitForAsync(pred, call).Get().status();
}

Future<Completed> ServiceResolver::WaitForAsync(
    std::function<bool(const std::vector<ServiceEndpoint>&)> pred, const CallOptions& call) {
  // Thread-free (as PrefixCache::WaitForRevisionAsync): a waiter CheckWaiters completes, ended
  // early by the cancel token or the recipes' timer. Registered before the first check, so a
  // change between the two is not missed (a second completion is ignored).
  Promise<bool> p;
  auto done = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(),
                                  [](const Waiter& w) { return w.done->load(); }),
                   waiters_.end());
    waiters_.push_back(Waiter{pred, p, done});
  }
  if (pred(Endpoints())) p.Set(true);
  return internal::Map<bool, Completed>(
      internal::Bounded(p, call, "discovery: condition not met before deadline"),
      [done](absl::StatusOr<bool> r) -> absl::StatusOr<Completed> {
        done->store(true);
        if (!r.ok()) return r.status();
        return Completed{};
      });
}

}  // namespace cairn::recipes
