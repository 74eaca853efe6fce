#include "server/api/corrupt_check.h"

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "server/base/logging.h"
#include "server/etcdserver/member_id.h"

namespace cairn::api {
namespace {

using etcdserver::IdToHex;

// Asks member `id` for its HashKV at `revision` over the peer transport (cairnpb.Peer HashKV,
// with the peer TLS settings; no client URL, no auth token), as etcd asks on its peer URLs.
absl::StatusOr<etcdserverpb::HashKVResponse> AskPeer(etcdserver::Server* server, uint64_t id,
                                                     int64_t revision) {
  auto p = std::make_shared<std::promise<absl::StatusOr<etcdserverpb::HashKVResponse>>>();
  auto f = p->get_future();
  server->PeerHashKV(id, revision, kPeerHashKvTimeoutMs,
                     [p](absl::StatusOr<etcdserverpb::HashKVResponse> r) { p->set_value(r); });
  return f.get();
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
  auto mine = LocalHashKv(server);
  if (!mine.ok()) return mine.status();
  std::vector<uint64_t> mismatched;
  for (const auto& m : server->Members()) {
    if (m.id() == server->member_id()) continue;
    auto theirs = AskPeer(server, m.id(), mine->revision);
    if (!theirs.ok()) {
      CAIRN_LOG(kInfo, "corrupt") << "skipped member " << IdToHex(m.id()) << " at revision "
                                  << mine->revision << ": " << theirs.status();
      continue;
    }
    if (theirs->hash() == mine->hash) continue;
    if (theirs->compact_revision() != mine->compact_revision) {
      CAIRN_LOG(kInfo, "corrupt") << "skipped member " << IdToHex(m.id())
                                  << ": compact revisions differ";
      continue;
    }
    CAIRN_LOG(kError, "corrupt") << "member " << IdToHex(m.id()) << " has hash " << theirs->hash()
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
