#include "server/api/gateway/connection.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cerrno>
#include <cstdio>

#include "server/api/gateway/tls_context.h"
#include "server/base/clock.h"
#include "server/base/logging.h"

namespace cairn::api::gateway {

namespace http = boost::beast::http;

namespace {
// Waits for `events` on `fd`; false on timeout or error. EINTR restarts with the full timeout,
// which only lengthens a bounded wait.
bool PollFor(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  for (;;) {
    int n = ::poll(&p, 1, timeout_ms);
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}
}  // namespace

Connection::Connection(int fd) : fd_(fd) {}

Connection::Connection(int fd, std::shared_ptr<SSL_CTX> tls) : fd_(fd), tls_ctx_(std::move(tls)) {
  // OpenSSL reads and writes the socket itself: non-blocking, waits are this class's polls.
  int flags = ::fcntl(fd_, F_GETFL, 0);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  ssl_ = SSL_new(tls_ctx_.get());
  if (ssl_ != nullptr && SSL_set_fd(ssl_, fd_) != 1) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (ssl_ != nullptr) SSL_set_accept_state(ssl_);
  ERR_clear_error();
}

Connection::~Connection() {
  if (ssl_ != nullptr) {
    // close_notify, best effort: the socket is non-blocking, so this never waits.
    if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
    SSL_free(ssl_);
    ERR_clear_error();
  }
  if (fd_ >= 0) ::close(fd_);
}

bool Connection::Handshake() {
  if (ssl_ == nullptr) return false;
  base::Clock* clock = base::Clock::Real();
  const int64_t deadline = clock->NowMs() + kTlsHandshakeTimeoutMs;
  for (;;) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) break;
    int err = SSL_get_error(ssl_, r);
    int64_t left = deadline - clock->NowMs();
    bool ready = false;
    if (left > 0 && err == SSL_ERROR_WANT_READ) {
      ready = PollFor(fd_, POLLIN, static_cast<int>(left));
    } else if (left > 0 && err == SSL_ERROR_WANT_WRITE) {
      ready = PollFor(fd_, POLLOUT, static_cast<int>(left));
    }
    if (ready) continue;
    // An untrusted or missing client certificate, no shared cipher or version, a silent client.
    // Logged as gRPC logs its own refused handshakes.
    unsigned long e = ERR_get_error();
    char reason[256] = "timed out or closed";
    if (e != 0) ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    CAIRN_LOG(kWarn, "tls") << "Handshake failed (HTTPS gateway): " << reason;
    return false;
  }
  peer_common_name_ = VerifiedPeerCommonName(ssl_);
  return true;
}

Connection::ReadResult Connection::ReceiveTls(int timeout_ms) {
  for (;;) {
    auto space = buffer_.prepare(16 * 1024);
    ERR_clear_error();
    int n = SSL_read(ssl_, space.data(), static_cast<int>(space.size()));
    if (n > 0) {
      buffer_.commit(static_cast<size_t>(n));
      return ReadResult::kOk;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_READ) {
      if (!PollFor(fd_, POLLIN, timeout_ms)) return ReadResult::kTimedOut;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      if (!PollFor(fd_, POLLOUT, timeout_ms)) return ReadResult::kTimedOut;
    } else {
      ERR_clear_error();
      return ReadResult::kClosed;  // close_notify, a reset or a TLS error
    }
  }
}

Connection::ReadResult Connection::Receive(int timeout_ms) {
  if (ssl_ != nullptr) return ReceiveTls(timeout_ms);
  for (;;) {
    if (!PollFor(fd_, POLLIN, timeout_ms)) return ReadResult::kTimedOut;
    auto space = buffer_.prepare(16 * 1024);
    ssize_t n = ::recv(fd_, space.data(), space.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return ReadResult::kClosed;
    buffer_.commit(static_cast<size_t>(n));
    return ReadResult::kOk;
  }
}

Connection::ReadResult Connection::ReadRequest(
    size_t body_bytes_max, int idle_timeout_ms, Request* out,
    const std::function<bool(const Request&)>& stream_body) {
  auto parser = std::make_unique<http::request_parser<http::string_body>>();
  parser->eager(true);
  parser->body_limit(body_bytes_max);
  parser->header_limit(kHttpHeaderBytesMax);
  bool got_bytes = buffer_.size() > 0;
  bool header_seen = false;
  for (;;) {
    if (buffer_.size() > 0) {
      boost::beast::error_code ec;
      size_t used = parser->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::body_limit) return ReadResult::kTooLarge;
      if (ec && ec != http::error::need_more) return ReadResult::kMalformed;
      if (parser->is_header_done() && !header_seen) {
        header_seen = true;
        // curl asks before sending a body over 1 KiB and waits a second for the answer; Go's
        // server (etcd's) answers at once, so cairn does too.
        auto expect = parser->get().find(http::field::expect);
        if (expect != parser->get().end() &&
            boost::beast::iequals(expect->value(), "100-continue") &&
            !Write("HTTP/1.1 100 Continue\r\n\r\n", idle_timeout_ms)) {
          return ReadResult::kClosed;
        }
        if (stream_body && stream_body(parser->get())) {
          // The body is left to ReadBodySome. Each request object in it is bounded by the
          // caller; the body as a whole is not (a watch may send creates and cancels for hours).
          out->base() = parser->get().base();
          parser->body_limit(boost::none);
          body_parser_ = std::move(parser);
          return ReadResult::kOk;
        }
      }
      if (parser->is_done()) {
        *out = parser->release();
        return ReadResult::kOk;
      }
      if (!ec && used > 0) continue;  // the parser may take the rest in another call
    }
    ReadResult r = Receive(idle_timeout_ms);
    if (r == ReadResult::kClosed) {
      // A request cut short is malformed; a close between requests is the normal end.
      return got_bytes ? ReadResult::kMalformed : ReadResult::kClosed;
    }
    if (r != ReadResult::kOk) return r;
    got_bytes = true;
  }
}

Connection::BodyResult Connection::ReadBodySome(int timeout_ms, std::string* out) {
  auto& p = *body_parser_;
  for (;;) {
    // What the parser already holds (the body bytes that came with the header, say).
    std::string& body = p.get().body();
    if (!body.empty()) {
      out->append(body);
      body.clear();  // string_body appends at the current size: safe to empty between puts
      return BodyResult::kData;
    }
    if (p.is_done()) return BodyResult::kEnd;
    if (buffer_.size() > 0) {
      boost::beast::error_code ec;
      size_t used = p.put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec && ec != http::error::need_more) return BodyResult::kMalformed;
      if (used > 0 || !p.get().body().empty() || p.is_done()) continue;
    }
    ReadResult r = Receive(timeout_ms);
    if (r == ReadResult::kTimedOut) return BodyResult::kTimedOut;
    if (r != ReadResult::kOk) return BodyResult::kClosed;
  }
}

bool Connection::Write(std::string_view data, int timeout_ms) {
  while (ssl_ != nullptr && !data.empty()) {
    ERR_clear_error();
    int n = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_WANT_WRITE) {
      if (!PollFor(fd_, POLLOUT, timeout_ms)) return false;
    } else if (err == SSL_ERROR_WANT_READ) {
      if (!PollFor(fd_, POLLIN, timeout_ms)) return false;
    } else {
      ERR_clear_error();
      return false;
    }
  }
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!PollFor(fd_, POLLOUT, timeout_ms)) return false;
      continue;
    }
    return false;
  }
  return true;
}

bool Connection::WriteChunk(std::string_view data, int timeout_ms) {
  if (data.empty()) return true;
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string chunk = size;
  chunk.append(data);
  chunk += "\r\n";
  return Write(chunk, timeout_ms);
}

bool Connection::WriteLastChunk(int timeout_ms) { return Write("0\r\n\r\n", timeout_ms); }

bool Connection::PeerClosed() {
  if (ssl_ != nullptr && SSL_pending(ssl_) > 0) return false;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
  char c;
  ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void Connection::Abort() { ::shutdown(fd_, SHUT_RDWR); }

}  // namespace cairn::api::gateway
