#include "server/etcdserver/membership.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "server/base/check.h"

namespace cairn::etcdserver {
namespace {

constexpr char kMembersPrefix[] = "members/";
constexpr char kRemovedPrefix[] = "removed/";

std::string IdKey(const char* prefix, uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(id));
  return std::string(prefix) + buf;
}

}  // namespace

std::string MemberKey(uint64_t id) { return IdKey(kMembersPrefix, id); }

void Membership::Load() {
  std::map<uint64_t, cairnpb::Member> members;
  std::set<uint64_t> removed;
  std::unique_ptr<rocksdb::Iterator> it(
      backend_->db()->NewIterator(rocksdb::ReadOptions(), backend_->cf(storage::Cf::kMeta)));
  for (it->Seek(kMembersPrefix); it->Valid() && it->key().starts_with(kMembersPrefix); it->Next()) {
    cairnpb::Member m;
    CAIRN_CHECK(m.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
        << "corrupt member record " << it->key().ToString();
    members[m.id()] = m;
  }
  for (it->Seek(kRemovedPrefix); it->Valid() && it->key().starts_with(kRemovedPrefix); it->Next()) {
    std::string hex = it->key().ToString().substr(sizeof(kRemovedPrefix) - 1);
    removed.insert(std::stoull(hex, nullptr, 16));
  }
  CAIRN_CHECK(it->status().ok()) << it->status().ToString();
  absl::MutexLock l(&mu_);
  members_ = std::move(members);
  removed_ = std::move(removed);
}

void Membership::PutLocked(const cairnpb::Member& m, rocksdb::WriteBatchBase* wb) {
  members_[m.id()] = m;
  CAIRN_CHECK(
      wb->Put(backend_->cf(storage::Cf::kMeta), MemberKey(m.id()), m.SerializeAsString()).ok());
}

void Membership::Add(const cairnpb::Member& member, rocksdb::WriteBatchBase* wb) {
  absl::MutexLock l(&mu_);
  cairnpb::Member m = member;
  auto it = members_.find(m.id());
  if (it != members_.end()) {
    // A promotion (or a replayed add): keep what the member published about itself.
    cairnpb::Member merged = it->second;
    merged.set_is_learner(m.is_learner());
    if (m.peer_urls_size() > 0) *merged.mutable_peer_urls() = m.peer_urls();
    m = std::move(merged);
  }
  PutLocked(m, wb);
}

void Membership::Remove(uint64_t id, rocksdb::WriteBatchBase* wb) {
  absl::MutexLock l(&mu_);
  members_.erase(id);
  removed_.insert(id);
  CAIRN_CHECK(wb->Delete(backend_->cf(storage::Cf::kMeta), MemberKey(id)).ok());
  CAIRN_CHECK(wb->Put(backend_->cf(storage::Cf::kMeta), IdKey(kRemovedPrefix, id), "").ok());
}

void Membership::SetAttributes(uint64_t id, const std::string& name,
                               const std::vector<std::string>& client_urls,
                               rocksdb::WriteBatchBase* wb) {
  absl::MutexLock l(&mu_);
  auto it = members_.find(id);
  if (it == members_.end()) return;  // removed meanwhile
  cairnpb::Member m = it->second;
  m.set_name(name);
  m.clear_client_urls();
  for (const auto& u : client_urls) m.add_client_urls(u);
  PutLocked(m, wb);
}

void Membership::SetPeerUrls(uint64_t id, const std::vector<std::string>& peer_urls,
                             rocksdb::WriteBatchBase* wb) {
  absl::MutexLock l(&mu_);
  auto it = members_.find(id);
  if (it == members_.end()) return;
  cairnpb::Member m = it->second;
  m.clear_peer_urls();
  for (const auto& u : peer_urls) m.add_peer_urls(u);
  PutLocked(m, wb);
}

std::vector<cairnpb::Member> Membership::Members() const {
  absl::MutexLock l(&mu_);
  std::vector<cairnpb::Member> out;
  out.reserve(members_.size());
  for (const auto& [id, m] : members_) out.push_back(m);
  return out;
}

std::optional<cairnpb::Member> Membership::Get(uint64_t id) const {
  absl::MutexLock l(&mu_);
  auto it = members_.find(id);
  if (it == members_.end()) return std::nullopt;
  return it->second;
}

bool Membership::IsLearner(uint64_t id) const {
  absl::MutexLock l(&mu_);
  auto it = members_.find(id);
  return it != members_.end() && it->second.is_learner();
}

bool Membership::IsRemoved(uint64_t id) const {
  absl::MutexLock l(&mu_);
  return removed_.count(id) > 0;
}

raft::ConfState Membership::ConfState() const {
  absl::MutexLock l(&mu_);
  raft::ConfState cs;
  for (const auto& [id, m] : members_) (m.is_learner() ? cs.learners : cs.voters).push_back(id);
  return cs;
}

uint64_t Membership::FindByPeerUrls(const std::vector<std::string>& peer_urls) const {
  absl::MutexLock l(&mu_);
  for (const auto& [id, m] : members_) {
    for (const auto& u : m.peer_urls()) {
      if (std::find(peer_urls.begin(), peer_urls.end(), u) != peer_urls.end()) return id;
    }
  }
  return 0;
}

}  // namespace cairn::etcdserver
