// Connection: one accepted HTTP/1.1 socket, read and written with timeouts by the thread that
// serves it (HttpServer runs one thread per connection). Requests are parsed by Boost.Beast's
// parser from the bytes this class receives; responses are written whole or as chunks.
//
// Thread safety: Read*/Write*/PeerClosed from the serving thread only; Abort from any thread
// (it shuts the socket down, which wakes a blocked read or write with an error).
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <string>
#include <string_view>

namespace cairn::api::gateway {

// The request header's size limit (Beast's default, named); a larger header gets 400.
inline constexpr size_t kHttpHeaderBytesMax = 8 * 1024;

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
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Reads the next request (header and whole body). Bytes after it stay buffered for the next.
  ReadResult ReadRequest(size_t body_bytes_max, int idle_timeout_ms, Request* out);

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
  int fd_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace cairn::api::gateway
