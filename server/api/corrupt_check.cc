#include "server/api/corrupt_check.h"

#include <grpcpp/grpcpp.h>

#include <future>
#include <memory>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/api/tls.h"
#include "server/base/logging.h"
#include "server/base/url.h"
#include "server/etcdserver/member_id.h"
#include "server/transport/tls.h"

namespace cairn::api {
namespace {

using etcdserver::IdToHex;

struct PeerHash {
  uint64_t member_id = 0;
  bool ok = false;
  etcdserverpb::HashKVResponse resp;
  std::string error;
};

// Asks member `m` for its HashKV at `revision` through its client URLs in turn, over TLS for an
// https URL (with this member's client TLS settings, `tls`).
PeerHash AskPeer(const cairnpb::Member& m, int64_t revision, const transport::TlsConfig& tls) {
  PeerHash out;
  out.member_id = m.id();
  for (const std::string& url : m.client_urls()) {
    auto target = base::HostPortOfUrl(url);
    if (!target.ok()) {
      out.error = std::string(target.status().message());
      continue;
    }
    auto channel = grpc::CreateChannel(*target, transport::ChannelCredentialsFor(url, tls));
    auto stub = etcdserverpb::Maintenance::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(kPeerHashKvTimeoutMs));
    etcdserverpb::HashKVRequest req;
    req.set_revision(revision);
    grpc::Status st = stub->HashKV(&ctx, req, &out.resp);
    if (st.ok()) {
      out.ok = true;
      return out;
    }
    out.error = url + ": " + st.error_message();
  }
  if (out.error.empty()) out.error = "no client URL";
  return out;
}

absl::StatusOr<etcdserver::HashKvResult> LocalHashKv(etcdserver::Server* server) {
  std::promise<absl::StatusOr<etcdserver::HashKvResult>> p;
  auto f = p.get_future();
  server->HashKV(0, [&p](absl::StatusOr<etcdserver::HashKvResult> r) { p.set_value(r); });
  return f.get();
}

// Compares this member's HashKV with every other member's at the same revision; returns the
// members whose hash differs at the same compact revision.
absl::StatusOr<std::vector<uint64_t>> Compare(etcdserver::Server* server) {
  auto tls = ClientTls(server->config(), {});
  if (!tls.ok()) return tls.status();
  auto mine = LocalHashKv(server);
  if (!mine.ok()) return mine.status();
  std::vector<uint64_t> mismatched;
  for (const auto& m : server->Members()) {
    if (m.id() == server->member_id() || m.client_urls().empty()) continue;
    PeerHash p = AskPeer(m, mine->revision, *tls);
    if (!p.ok) {
      CAIRN_LOG(kInfo, "corrupt") << "skipped member " << IdToHex(m.id()) << " at revision "
                                  << mine->revision << ": " << p.error;
      continue;
    }
    if (p.resp.hash() == mine->hash) continue;
    if (p.resp.compact_revision() != mine->compact_revision) {
      CAIRN_LOG(kInfo, "corrupt") << "skipped member " << IdToHex(m.id())
                                  << ": compact revisions differ";
      continue;
    }
    CAIRN_LOG(kError, "corrupt") << "member " << IdToHex(m.id()) << " has hash " << p.resp.hash()
                                 << " at revision " << mine->revision << ", this member "
                                 << IdToHex(server->member_id()) << " has " << mine->hash
                                 << " (compact revision " << mine->compact_revision << ")";
    mismatched.push_back(m.id());
  }
  return mismatched;
}

}  // namespace

absl::Status CorruptChecker::InitialCheck(etcdserver::Server* server) {
  auto mismatched = Compare(server);
  if (!mismatched.ok()) return mismatched.status();
  if (!mismatched->empty()) {
    return absl::DataLossError(IdToHex(server->member_id()) +
                               " found data inconsistency with peers");
  }
  CAIRN_LOG(kInfo, "corrupt") << "initial corruption check passed";
  return absl::OkStatus();
}

std::vector<uint64_t> CorruptChecker::CheckOnce() {
  if (!server_->is_leader()) return {};
  auto mismatched = Compare(server_);
  if (!mismatched.ok()) return {};
  for (uint64_t id : *mismatched) {
    etcdserverpb::AlarmRequest req;
    req.set_action(etcdserverpb::AlarmRequest::ACTIVATE);
    req.set_memberid(id);
    req.set_alarm(etcdserverpb::CORRUPT);
    server_->Alarm(req, [id](absl::StatusOr<etcdserverpb::AlarmResponse> r) {
      if (!r.ok()) {
        CAIRN_LOG(kWarn, "corrupt") << "raising CORRUPT for " << IdToHex(id) << ": " << r.status();
      }
    });
  }
  return *mismatched;
}

void CorruptChecker::Start(int64_t interval_ms) {
  thread_ = std::thread([this, interval_ms] {
    while (true) {
      {
        absl::MutexLock l(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::Milliseconds(interval_ms))) {
          return;
        }
      }
      CheckOnce();
    }
  });
}

void CorruptChecker::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace cairn::api
