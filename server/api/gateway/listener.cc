#include "server/api/gateway/listener.h"

#include <sys/socket.h>

#include <grpcpp/server_posix.h>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
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

// A TLS connection relayed to gRPC's TLS listener: sockets[0] the client, sockets[1] gRPC.
// Bytes of direction d are read from sockets[d] into buffers[d] and written to sockets[1 - d].
struct Relay {
  Relay(tcp::socket client, asio::io_context& io) : sockets{std::move(client), tcp::socket(io)} {}
  std::array<tcp::socket, 2> sockets;
  std::array<std::array<char, kRelayBufferBytes>, 2> buffers;
  std::array<bool, 2> done{false, false};
  bool closed = false;
};

bool OffersHttp11(const ClientHello& hello) {
  if (!hello.has_alpn) return true;
  for (const auto& p : hello.alpn) {
    if (p == "http/1.1") return true;
  }
  return false;
}
}  // namespace

struct Listener::Impl {
  grpc::Server* grpc = nullptr;
  HttpServer* http = nullptr;
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<bool> acceptor_tls;  // per acceptor: an https URL
  std::shared_ptr<TlsContext> tls;
  tcp::endpoint grpc_tls_backend;
  int pending = 0;                                                    // accept thread only
  int relays = 0;                                                     // accept thread only
  std::string peek_buffer = std::string(kClientHelloBytesMax, '\0');  // accept thread only

  void Accept(tcp::acceptor* acceptor, bool https);
  void OnAccepted(tcp::socket socket, bool https);
  void Peek(std::shared_ptr<Pending> p);
  void PeekHello(std::shared_ptr<Pending> p);
  void Finish(const std::shared_ptr<Pending>& p);
  void HandOff(tcp::socket* socket, bool grpc_side);
  void HandOffTls(tcp::socket* socket);
  void RefusePlaintext(tcp::socket* socket);
  void StartRelay(tcp::socket socket);
  void Pump(const std::shared_ptr<Relay>& r, int d);
  void EndRelay(const std::shared_ptr<Relay>& r, int d, bool error);
};

void Listener::Impl::Accept(tcp::acceptor* acceptor, bool https) {
  acceptor->async_accept([this, acceptor, https](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
    if (ec) {
      auto timer = std::make_shared<asio::steady_timer>(io);
      timer->expires_after(std::chrono::milliseconds(kAcceptRetryMs));
      timer->async_wait([this, acceptor, https, timer](error_code) { Accept(acceptor, https); });
      return;
    }
    OnAccepted(std::move(socket), https);
    Accept(acceptor, https);
  });
}

void Listener::Impl::OnAccepted(tcp::socket socket, bool https) {
  error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  https = https && tls != nullptr;
  if (https && http == nullptr) {  // gRPC only: no need to look
    StartRelay(std::move(socket));
    return;
  }
  if (https && grpc == nullptr) {  // HTTP only
    HandOffTls(&socket);
    return;
  }
  if (!https && grpc == nullptr) {  // HTTP only
    HandOff(&socket, /*grpc_side=*/false);
    return;
  }
  // gRPC only, or both: hand the connection over once its first bytes have arrived. (Handed to
  // gRPC at accept, before the client's preface, a connection was now and then never served.)
  if (pending >= kMaxUnclassifiedConnections) return;  // `socket` closes
  ++pending;
  auto p = std::make_shared<Pending>(std::move(socket), io);
  p->timer.expires_after(std::chrono::milliseconds(kFirstBytesTimeoutMs));
  p->timer.async_wait([p](error_code ec) {
    error_code ignored;
    if (!ec && !p->done) p->socket.close(ignored);  // wakes the peek with an error
  });
  if (https) {
    PeekHello(p);
  } else {
    Peek(p);
  }
}

void Listener::Impl::PeekHello(std::shared_ptr<Pending> p) {
  p->socket.async_wait(tcp::socket::wait_read, [this, p](error_code ec) {
    if (ec || !p->socket.is_open()) {
      Finish(p);
      return;
    }
    ssize_t n = ::recv(p->socket.native_handle(), peek_buffer.data(), peek_buffer.size(),
                       MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      PeekHello(p);
      return;
    }
    error_code ignored;
    if (n <= 0) {  // closed before saying anything
      Finish(p);
      p->socket.close(ignored);
      return;
    }
    ClientHello hello = PeekClientHello(std::string_view(peek_buffer.data(), n));
    switch (hello.kind) {
      case HelloKind::kIncomplete: {
        // The record is not all here: the next peek waits a little (bounded by the timer).
        auto retry = std::make_shared<asio::steady_timer>(io);
        retry->expires_after(std::chrono::milliseconds(kRepeekMs));
        retry->async_wait([this, p, retry](error_code) { PeekHello(p); });
        return;
      }
      case HelloKind::kNotTls:
        Finish(p);
        RefusePlaintext(&p->socket);
        return;
      case HelloKind::kTls:
        Finish(p);
        if (OffersHttp11(hello)) {
          HandOffTls(&p->socket);
        } else {
          StartRelay(std::move(p->socket));
        }
        return;
    }
  });
}

void Listener::Impl::RefusePlaintext(tcp::socket* socket) {
  // Logged as gRPC logs its own refused handshakes.
  error_code ec;
  tcp::endpoint peer = socket->remote_endpoint(ec);
  CAIRN_LOG(kWarn, "tls") << "Handshake failed with "
                          << (ec ? std::string("?") : peer.address().to_string())
                          << ": not a TLS ClientHello (a plaintext client on an https client URL)";
  // Closed without an answer, as etcd 3.4 does. What arrived is read first, so the close sends
  // a FIN rather than a reset.
  while (::recv(socket->native_handle(), peek_buffer.data(), peek_buffer.size(), MSG_DONTWAIT) >
         0) {
  }
  error_code ignored;
  socket->shutdown(tcp::socket::shutdown_send, ignored);
  socket->close(ignored);
}

void Listener::Impl::HandOffTls(tcp::socket* socket) {
  std::shared_ptr<SSL_CTX> ctx = tls->Current();
  error_code ec;
  int fd = socket->release(ec);
  if (ec) return;
  http->Adopt(fd, std::move(ctx));
}

void Listener::Impl::StartRelay(tcp::socket socket) {
  if (relays >= kMaxRelayedConnections) return;  // `socket` closes
  ++relays;
  auto r = std::make_shared<Relay>(std::move(socket), io);
  r->sockets[1].async_connect(grpc_tls_backend, [this, r](error_code ec) {
    if (ec) {
      EndRelay(r, 0, /*error=*/true);
      EndRelay(r, 1, /*error=*/true);
      return;
    }
    error_code ignored;
    r->sockets[1].set_option(tcp::no_delay(true), ignored);
    Pump(r, 0);
    Pump(r, 1);
  });
}

void Listener::Impl::Pump(const std::shared_ptr<Relay>& r, int d) {
  r->sockets[d].async_read_some(asio::buffer(r->buffers[d]), [this, r, d](error_code ec, size_t n) {
    if (ec) {
      EndRelay(r, d, /*error=*/ec != asio::error::eof);
      return;
    }
    asio::async_write(r->sockets[1 - d], asio::buffer(r->buffers[d].data(), n),
                      [this, r, d](error_code ec, size_t) {
                        if (ec) {
                          EndRelay(r, d, /*error=*/true);
                          return;
                        }
                        Pump(r, d);
                      });
  });
}

void Listener::Impl::EndRelay(const std::shared_ptr<Relay>& r, int d, bool error) {
  error_code ignored;
  if (!r->done[d]) {
    r->done[d] = true;
    // A clean end of one direction is passed on as a half close; an error ends both.
    if (!error) r->sockets[1 - d].shutdown(tcp::socket::shutdown_send, ignored);
  }
  if (error || (r->done[0] && r->done[1])) {
    if (r->closed) return;
    r->closed = true;
    --relays;
    r->sockets[0].close(ignored);  // the other direction's pending operation ends too
    r->sockets[1].close(ignored);
  }
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
    HandOff(&p->socket, /*grpc_side=*/http == nullptr || (first[0] == 'P' && first[1] == 'R'));
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
    impl_->acceptor_tls.push_back(text.rfind("https://", 0) == 0);
  }
  return bound;
}

void Listener::SetTls(std::shared_ptr<TlsContext> tls, int grpc_tls_port) {
  impl_->tls = std::move(tls);
  impl_->grpc_tls_backend =
      tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<uint16_t>(grpc_tls_port));
}

void Listener::Start(grpc::Server* grpc, HttpServer* http) {
  impl_->grpc = grpc;
  impl_->http = http;
  for (size_t i = 0; i < impl_->acceptors.size(); ++i) {
    impl_->Accept(impl_->acceptors[i].get(), impl_->acceptor_tls[i]);
  }
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
