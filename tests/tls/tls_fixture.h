// Helpers of the TLS tests (tests/tls): certificates made by the openssl CLI in a temporary
// directory, and cairn member processes on ephemeral loopback ports with their own log files.
// Thread-compatible.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/harness/cluster_ops.h"
#include "tests/harness/server_process.h"

namespace cairn::tls_test {

using cairn::testing::CommandResult;

// A fresh directory under /tmp ("" on failure).
std::string MakeTempDir(const std::string& prefix);

// A loopback port that was free a moment ago.
int FreePort();

// The harness's bounded poll (cluster_ops.h) with this suite's default bound of 20 s.
inline bool PollUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(20000)) {
  return cairn::testing::PollUntil(pred, timeout);
}

// The file's contents ("" when unreadable).
std::string ReadFileOrEmpty(const std::string& path);

// Certificates in `dir` (PEM, EC P-256 keys), made by Generate():
//   ca.pem / ca.key            the trusted CA;   other-ca.pem  a CA nobody trusts
//   server.{pem,key}           CN=server, SAN 127.0.0.1 + localhost, serverAuth+clientAuth
//   server2.{pem,key}          the same names, another key and serial (for rotation)
//   client.{pem,key}           CN=client-user, clientAuth
//   peer.{pem,key}             CN=peer, SAN 127.0.0.1 + localhost, serverAuth+clientAuth
//   intruder.{pem,key}         as peer but CN=intruder
//   expired.{pem,key}          CN=client-user, expired
//   stranger.{pem,key}         CN=client-user, signed by other-ca
class Certs {
 public:
  absl::Status Generate(const std::string& dir);
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  // The certificate's serial as `openssl x509 -serial` prints it ("serial=...").
  std::string Serial(const std::string& pem_name) const;

 private:
  absl::Status Leaf(const std::string& name, const std::string& cn, const std::string& ca,
                    bool server);
  absl::Status Expired(const std::string& name, const std::string& cn);
  std::string dir_;
};

// One cairn process. The destructor stops it (SIGTERM, bounded wait, SIGKILL).
class Member {
 public:
  // `binary`: the server to run; "" is cairn (ServerBinary(kCairn)).
  Member(std::string name, std::string dir, std::string binary = "")
      : name_(std::move(name)), dir_(std::move(dir)), binary_(std::move(binary)) {}
  ~Member();
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  // Spawns cairn --name <name> --data-dir <dir>/data <args>, output to <dir>/cairn.log.
  absl::Status Start(const std::vector<std::string>& args);
  void Stop();
  // True while the process has not exited.
  bool Running();
  std::string Log() const { return ReadFileOrEmpty(dir_ + "/cairn.log"); }
  std::string DataDir() const { return dir_ + "/data"; }

 private:
  std::string name_;
  std::string dir_;
  std::string binary_;
  pid_t pid_ = -1;
};

// etcdctl (API v3) against `endpoint` with `flags` (e.g. --cacert ...) and the command `args`.
CommandResult Etcdctl(const std::string& endpoint, const std::vector<std::string>& flags,
                      const std::vector<std::string>& args);

}  // namespace cairn::tls_test
