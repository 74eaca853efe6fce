#include "server/api/gateway/http_server.h"

#include <pthread.h>
#include <signal.h>

#include <boost/beast/http/verb.hpp>
#include <string_view>

#include "server/api/gateway/routes.h"

namespace cairn::api::gateway {

namespace http = boost::beast::http;

namespace {

constexpr int kWriteTimeoutMs = 10 * 1000;  // for the small, complete answers written here

std::string_view PathOf(const Request& request) {
  std::string_view target(request.target().data(), request.target().size());
  return target.substr(0, target.find('?'));
}

bool Verbose(const Request& request) {
  std::string_view target(request.target().data(), request.target().size());
  size_t q = target.find('?');
  return q != std::string_view::npos && target.find("verbose", q) != std::string_view::npos;
}

// etcd 3.5's /livez and /readyz: "ok", or 503 with the failed checks; ?verbose lists them all.
struct Check {
  const char* name;
  bool ok;
};

std::string ProbeBody(const std::vector<Check>& checks, bool verbose, const std::string& what,
                      bool* all_ok) {
  *all_ok = true;
  std::string out;
  for (const Check& c : checks) {
    if (!c.ok) *all_ok = false;
    if (verbose || !c.ok) {
      out += std::string(c.ok ? "[+]" : "[-]") + c.name +
             (c.ok ? " ok\n" : " failed: reason withheld\n");
    }
  }
  if (*all_ok) return out + "ok\n";
  return out + what + " check failed\n";
}

bool HasAlarm(const HealthState& h, std::string_view name) {
  for (const auto& a : h.alarms) {
    if (a == name) return true;
  }
  return false;
}

}  // namespace

HttpServer::HttpServer(HttpOptions options) : options_(std::move(options)) {
  if (options_.channel) {
    gateway_ = std::make_unique<JsonGateway>(options_.channel, options_.body_bytes_max, &stopping_,
                                             options_.identity_key);
  }
}

HttpServer::~HttpServer() { Stop(); }

int HttpServer::connections() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(slots_.size());
}

void HttpServer::Adopt(int fd) { Adopt(fd, nullptr); }

void HttpServer::Adopt(int fd, std::shared_ptr<SSL_CTX> tls) {
  ReapFinished();
  auto conn =
      tls ? std::make_unique<Connection>(fd, std::move(tls)) : std::make_unique<Connection>(fd);
  absl::MutexLock lock(&mu_);
  if (stopping_.load() || static_cast<int>(slots_.size()) >= kMaxHttpConnections) {
    if (conn->tls()) return;  // no plaintext answer inside a TLS connection; closed
    // Best effort: the socket is new, so this small write does not block for long.
    conn->Write(
        HttpResponse(503, "application/json", ErrorJson(14, "too many HTTP connections"), false),
        /*timeout_ms=*/100);
    return;  // `conn` closes the socket
  }
  uint64_t id = next_id_++;
  Slot& slot = slots_[id];
  slot.conn = std::move(conn);
  Connection* raw = slot.conn.get();
  slot.thread = std::thread([this, id, raw] { Serve(id, raw); });
}

void HttpServer::ReapFinished() {
  std::vector<std::thread> done;
  {
    absl::MutexLock lock(&mu_);
    done.swap(finished_);
  }
  for (auto& t : done) t.join();
}

void HttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, slot] : slots_) slot.conn->Abort();
  }
  // Each thread ends soon: its socket is shut down and its call (if any) cancels within
  // json_gateway's cancel-check interval. It then moves its thread into finished_.
  mu_.LockWhen(absl::Condition(
      +[](std::map<uint64_t, Slot>* slots) { return slots->empty(); }, &slots_));
  mu_.Unlock();
  ReapFinished();
}

void HttpServer::Serve(uint64_t id, Connection* conn) {
  // OpenSSL writes a TLS connection's socket with write(), which raises SIGPIPE when the peer
  // has gone; blocked in this thread, the write fails with EPIPE instead of ending the process.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  bool ready = !conn->tls() || conn->Handshake();
  while (ready && !stopping_.load()) {
    Request request;
    // Watch and LeaseKeepAlive bodies are read as they arrive (json_gateway.h).
    auto r = conn->ReadRequest(options_.body_bytes_max, kHttpIdleTimeoutMs, &request,
                               [this](const Request& header) {
                                 if (!gateway_ || header.method() != http::verb::post) return false;
                                 const Route* route = FindRoute(PathOf(header));
                                 return route != nullptr && route->kind == CallKind::kBidiStream;
                               });
    if (r == Connection::ReadResult::kTooLarge) {
      Reply(conn, 413, "application/json",
            ErrorJson(8, "request body larger than " + std::to_string(options_.body_bytes_max) +
                             " bytes"),
            false);
      break;
    }
    if (r == Connection::ReadResult::kMalformed) {
      Reply(conn, 400, "text/plain; charset=utf-8", "400 Bad Request\n", false);
      break;
    }
    if (r != Connection::ReadResult::kOk) break;
    if (!Dispatch(request, conn)) break;
  }
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(id);
  finished_.push_back(std::move(it->second.thread));
  slots_.erase(it);  // closes the socket
}

bool HttpServer::Reply(Connection* conn, unsigned status, std::string_view content_type,
                       std::string_view body, bool keep_alive) {
  return conn->Write(HttpResponse(status, content_type, body, keep_alive), kWriteTimeoutMs) &&
         keep_alive;
}

bool HttpServer::Dispatch(const Request& request, Connection* conn) {
  std::string_view path = PathOf(request);
  bool keep_alive = request.keep_alive();
  bool get = request.method() == http::verb::get;
  if (request.method() == http::verb::options) {
    return Reply(conn, 200, "", "", keep_alive);  // CORS preflight, as etcd answers it
  }
  if (path == "/metrics" && get) {
    std::string text = options_.metrics ? options_.metrics() : std::string();
    return Reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, keep_alive);
  }
  if (path == "/health" && get) {
    HealthState h = options_.health ? options_.health() : HealthState{};
    std::string reason;
    if (!h.alarms.empty()) {
      reason = "ALARM " + h.alarms.front();
    } else if (!h.has_leader) {
      reason = "RAFT NO LEADER";
    }
    if (reason.empty())
      return Reply(conn, 200, "text/plain; charset=utf-8", "{\"health\":\"true\"}", keep_alive);
    return Reply(conn, 503, "text/plain; charset=utf-8",
                 "{\"health\":\"false\",\"reason\":\"" + reason + "\"}", keep_alive);
  }
  if (!options_.metrics_only) {
    if ((path == "/livez" || path == "/readyz") && get) {
      HealthState h = options_.health ? options_.health() : HealthState{};
      std::vector<Check> checks;
      if (path == "/readyz") {
        checks = {{"data_corruption", !HasAlarm(h, "CORRUPT")},
                  {"serializable_read", true},
                  {"linearizable_read", h.has_leader}};
      } else {
        checks = {{"serializable_read", true}};
      }
      bool ok = false;
      std::string body = ProbeBody(checks, Verbose(request), std::string(path.substr(1)), &ok);
      return Reply(conn, ok ? 200 : 503, "text/plain; charset=utf-8", body, keep_alive);
    }
    if (path == "/version" && get) {
      return Reply(conn, 200, "application/json", options_.version_json, keep_alive);
    }
    if (const Route* route = FindRoute(path)) {
      if (request.method() != http::verb::post) {
        return Reply(conn, 405, "text/plain; charset=utf-8", "Method Not Allowed\n", keep_alive);
      }
      return gateway_->Serve(*route, request, conn);
    }
    if (path.substr(0, 4) == "/v3/" || path.substr(0, 8) == "/v3beta/") {
      return Reply(conn, 404, "text/plain; charset=utf-8", "Not Found\n", keep_alive);
    }
  }
  return Reply(conn, 404, "text/plain; charset=utf-8", "404 page not found\n", keep_alive);
}

}  // namespace cairn::api::gateway
