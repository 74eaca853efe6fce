// A loopback TCP forwarder for tests: clients connect to port() and are forwarded to a target
// port. Cut() closes every forwarded connection and makes new ones close at once (a network
// partition between one client and the server); Restore() forwards again. Thread-safe.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cairn::recipes_test {

class TcpProxy {
 public:
  explicit TcpProxy(int target_port) : target_port_(target_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~TcpProxy() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    Cut();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : pumps_) t.join();
    for (int fd : open_fds_) ::close(fd);
    ::close(listen_fd_);
  }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  void Cut() {
    std::lock_guard<std::mutex> lock(mu_);
    cut_ = true;
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  void Restore() {
    std::lock_guard<std::mutex> lock(mu_);
    cut_ = false;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      if (cut_ || stop_) {
        ::close(client);
        continue;
      }
      int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(target_port_));
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      open_fds_.push_back(client);
      open_fds_.push_back(server);
      pumps_.emplace_back([client, server] { Pump(client, server); });
    }
  }

  // Copies bytes both ways until either side closes; then closes both.
  static void Pump(int a, int b) {
    char buf[16384];
    while (true) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(p, 2, 200) < 0) break;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          ssize_t n = ::read(p[i].fd, buf, sizeof(buf));
          if (n <= 0) {
            done = true;
            break;
          }
          int to = i == 0 ? b : a;
          ssize_t off = 0;
          while (off < n) {
            ssize_t w = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
            if (w <= 0) {
              done = true;
              break;
            }
            off += w;
          }
        }
      }
      if (done) break;
    }
    ::shutdown(a, SHUT_RDWR);
    ::shutdown(b, SHUT_RDWR);
  }

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  bool cut_ = false;
  std::vector<int> open_fds_;
  std::vector<std::thread> pumps_;
};

}  // namespace cairn::recipes_test
