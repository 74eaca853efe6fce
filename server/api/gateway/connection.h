// Connection: one accepted HTTP/1.1 socket, read and written with timeouts by the thread that
// serves it (HttpServer runs one thread per connection). Requests are parsed by Boost.Beast's
// parser from the bytes this class receives; responses are written whole or as chunks.
//
// A connection adopted from an https port carries TLS (terminated here with OpenSSL): Handshake
// first, then the same reads and writes go through the SSL object.
//
// Thread safety: Handshake/Read*/Write*/PeerClosed from the serving thread only; Abort from any
// thread (it shuts the socket down, which wakes a blocked read or write with an error).
#pragma once

#include <openssl/ssl.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace cairn::api::gateway {

// The request header's size limit (Beast's default, named); a larger header gets 400.
inline constexpr size_t kHttpHeaderBytesMax = 8 * 1024;
// A connection that sends no byte for this long while cairn awaits a request (or a streamed
// body's first request object) is closed.
inline constexpr int kHttpIdleTimeoutMs = 120 * 1000;
// A TLS connection whose handshake is not done within this long is closed.
inline constexpr int kTlsHandshakeTimeoutMs = 10 * 1000;

using Request = boost::beast::http::request<boost::beast::http::string_body>;

class Connection {
 public:
  enum class ReadResult {
    kOk,
    kClosed,     // the peer closed (or the server aborted) between requests
    kTimedOut,   // no complete request within the idle timeout
    kTooLarge,   // the body exceeds `body_bytes_max`
    kMalformed,  // not HTTP/1.x
  };

  // Takes ownership of `fd` (a connected stream socket); closes it on destruction.
  explicit Connection(int fd);
  // A TLS connection (server side) with a context of TlsContext (tls_context.h).
  Connection(int fd, std::shared_ptr<SSL_CTX> tls);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool tls() const { return ssl_ != nullptr; }
  // The TLS handshake, within kTlsHandshakeTimeoutMs; false when it failed (the connection is
  // to be closed). Afterwards peer_common_name() is the verified client certificate's CN.
  bool Handshake();
  const std::optional<std::string>& peer_common_name() const { return peer_common_name_; }

  // Reads the next request (header and whole body). Bytes after it stay buffered for the next.
  // When `stream_body` is given and returns true for the request's header, only the header is
  // read (`*out` has an empty body): the body is then read as it arrives with ReadBodySome, and
  // no further request is read on this connection.
  ReadResult ReadRequest(size_t body_bytes_max, int idle_timeout_ms, Request* out,
                         const std::function<bool(const Request&)>& stream_body = nullptr);

  enum class BodyResult {
    kData,       // bytes were appended
    kEnd,        // the body is complete (nothing more will come)
    kTimedOut,   // nothing arrived within the timeout
    kClosed,     // the peer closed or the connection was aborted before the body's end
    kMalformed,  // the chunked encoding is broken
  };
  // After a ReadRequest that stopped at the header: appends the body bytes that arrived (the
  // chunked encoding removed) to *out, waiting at most `timeout_ms` for some.
  BodyResult ReadBodySome(int timeout_ms, std::string* out);
  bool streaming_body() const { return body_parser_ != nullptr; }

  // Writes all of `data` within `timeout_ms`; false when the peer is gone or too slow.
  bool Write(std::string_view data, int timeout_ms);
  // A chunk of a chunked body ("" writes nothing; use WriteLastChunk to end the body).
  bool WriteChunk(std::string_view data, int timeout_ms);
  bool WriteLastChunk(int timeout_ms);

  // True when the peer has closed its side or the connection was aborted (never blocks).
  bool PeerClosed();
  void Abort();
  int fd() const { return fd_; }

 private:
  // Receives what is available (waiting at most `timeout_ms`) into buffer_.
  ReadResult Receive(int timeout_ms);

  // One SSL_read into buffer_ (TLS connections).
  ReadResult ReceiveTls(int timeout_ms);

  int fd_;
  std::shared_ptr<SSL_CTX> tls_ctx_;
  SSL* ssl_ = nullptr;
  std::optional<std::string> peer_common_name_;
  boost::beast::flat_buffer buffer_;
  // The parser of a request whose body is read incrementally (ReadBodySome).
  std::unique_ptr<boost::beast::http::request_parser<boost::beast::http::string_body>> body_parser_;
};

}  // namespace cairn::api::gateway
