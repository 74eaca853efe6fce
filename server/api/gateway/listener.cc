#include "server/api/gateway/listener.h"

#include <sys/socket.h>

#include <grpcpp/server_posix.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>

#include "server/base/logging.h"
#include "server/base/url.h"

namespace cairn::api::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {
// When an accept fails (out of file descriptors), the next try waits this long.
constexpr int kAcceptRetryMs = 100;
// When the first bytes do not tell HTTP/1.1 from HTTP/2 yet ("P" alone), the next peek waits.
constexpr int kRepeekMs = 5;

// A connection whose first bytes are awaited.
struct Pending {
  Pending(tcp::socket s, asio::io_context& io) : socket(std::move(s)), timer(io) {}
  tcp::socket socket;
  asio::steady_timer timer;
  bool done = false;
};
}  // namespace

struct Listener::Impl {
  grpc::Server* grpc = nullptr;
  HttpServer* http = nullptr;
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  int pending = 0;  // accept thread only

  void Accept(tcp::acceptor* acceptor);
  void OnAccepted(tcp::socket socket);
  void Peek(std::shared_ptr<Pending> p);
  void Finish(const std::shared_ptr<Pending>& p);
  void HandOff(tcp::socket* socket, bool grpc_side);
};

void Listener::Impl::Accept(tcp::acceptor* acceptor) {
  acceptor->async_accept([this, acceptor](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
    if (ec) {
      auto timer = std::make_shared<asio::steady_timer>(io);
      timer->expires_after(std::chrono::milliseconds(kAcceptRetryMs));
      timer->async_wait([this, acceptor, timer](error_code) { Accept(acceptor); });
      return;
    }
    OnAccepted(std::move(socket));
    Accept(acceptor);
  });
}

void Listener::Impl::OnAccepted(tcp::socket socket) {
  error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  if (grpc == nullptr || http == nullptr) {
    HandOff(&socket, /*grpc_side=*/http == nullptr);
    return;
  }
  if (pending >= kMaxUnclassifiedConnections) return;  // `socket` closes
  ++pending;
  auto p = std::make_shared<Pending>(std::move(socket), io);
  p->timer.expires_after(std::chrono::milliseconds(kFirstBytesTimeoutMs));
  p->timer.async_wait([p](error_code ec) {
    error_code ignored;
    if (!ec && !p->done) p->socket.close(ignored);  // wakes the peek with an error
  });
  Peek(p);
}

void Listener::Impl::Finish(const std::shared_ptr<Pending>& p) {
  if (p->done) return;
  p->done = true;
  --pending;
  p->timer.cancel();
}

void Listener::Impl::Peek(std::shared_ptr<Pending> p) {
  p->socket.async_wait(tcp::socket::wait_read, [this, p](error_code ec) {
    if (ec || !p->socket.is_open()) {
      Finish(p);
      return;
    }
    char first[2];
    ssize_t n = ::recv(p->socket.native_handle(), first, sizeof(first), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      Peek(p);
      return;
    }
    if (n <= 0) {  // closed before saying anything
      Finish(p);
      error_code ignored;
      p->socket.close(ignored);
      return;
    }
    if (n == 1 && first[0] == 'P') {
      // "P" starts both "PRI * HTTP/2.0" and "POST"/"PUT": wait for the second byte.
      auto retry = std::make_shared<asio::steady_timer>(io);
      retry->expires_after(std::chrono::milliseconds(kRepeekMs));
      retry->async_wait([this, p, retry](error_code) { Peek(p); });
      return;
    }
    Finish(p);
    HandOff(&p->socket, /*grpc_side=*/first[0] == 'P' && first[1] == 'R');
  });
}

void Listener::Impl::HandOff(tcp::socket* socket, bool grpc_side) {
  error_code ec;
  int fd = socket->release(ec);
  if (ec) return;
  if (grpc_side) {
    grpc::AddInsecureChannelFromFd(grpc, fd);
  } else {
    http->Adopt(fd);
  }
}

Listener::Listener() : impl_(std::make_unique<Impl>()) {}

Listener::~Listener() { Stop(); }

absl::StatusOr<std::vector<std::string>> Listener::Bind(const std::vector<std::string>& urls) {
  std::vector<std::string> bound;
  for (const auto& text : urls) {
    auto url = base::ParseUrl(text);
    if (!url.ok()) return url.status();
    std::string host = url->host;
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    error_code ec;
    tcp::endpoint endpoint;
    auto address = asio::ip::make_address(host, ec);
    if (!ec) {
      endpoint = tcp::endpoint(address, url->port);
    } else {
      tcp::resolver resolver(impl_->io);
      auto results = resolver.resolve(host, std::to_string(url->port), ec);
      if (ec || results.empty()) {
        return absl::InvalidArgumentError("cannot resolve the host of " + text);
      }
      endpoint = results.begin()->endpoint();
    }
    auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
    acceptor->open(endpoint.protocol(), ec);
    // SO_REUSEADDR (not SO_REUSEPORT): a restarted member rebinds at once, a second member on
    // the same port is refused.
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return absl::UnavailableError("cannot listen on " + text + ": " + ec.message());
    bound.push_back(url->host + ":" + std::to_string(acceptor->local_endpoint(ec).port()));
    impl_->acceptors.push_back(std::move(acceptor));
  }
  return bound;
}

void Listener::Start(grpc::Server* grpc, HttpServer* http) {
  impl_->grpc = grpc;
  impl_->http = http;
  for (auto& a : impl_->acceptors) impl_->Accept(a.get());
  thread_ = std::thread([this] { impl_->io.run(); });
}

void Listener::Stop() {
  if (!impl_) return;
  asio::post(impl_->io, [this] {
    error_code ignored;
    for (auto& a : impl_->acceptors) a->close(ignored);
    impl_->io.stop();
  });
  if (thread_.joinable()) thread_.join();
  impl_.reset();  // closes the unclassified connections
}

}  // namespace cairn::api::gateway
