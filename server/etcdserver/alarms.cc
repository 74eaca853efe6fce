#include "server/etcdserver/alarms.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "server/base/check.h"

namespace cairn::etcdserver {

std::string AlarmKey(uint64_t member_id, etcdserverpb::AlarmType type) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%s%016llx/%d", kAlarmPrefix,
                static_cast<unsigned long long>(member_id), static_cast<int>(type));
  return buf;
}

void Alarms::Load() {
  std::set<std::pair<uint64_t, int>> loaded;
  std::unique_ptr<rocksdb::Iterator> it(
      backend_->db()->NewIterator(rocksdb::ReadOptions(), backend_->cf(storage::Cf::kMeta)));
  const std::string prefix = kAlarmPrefix;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string key = it->key().ToString();
    // "alarm/" + 16 hex + "/" + type
    CAIRN_CHECK(key.size() > prefix.size() + 17 && key[prefix.size() + 16] == '/')
        << "corrupt alarm key " << key;
    uint64_t id = std::strtoull(key.substr(prefix.size(), 16).c_str(), nullptr, 16);
    int type = std::atoi(key.c_str() + prefix.size() + 17);
    loaded.insert({id, type});
  }
  absl::MutexLock l(&mu_);
  alarms_ = std::move(loaded);
  UpdateFlagsLocked();
}

etcdserverpb::AlarmResponse Alarms::Apply(const etcdserverpb::AlarmRequest& r,
                                          rocksdb::WriteBatchBase* wb) {
  etcdserverpb::AlarmResponse resp;
  if (r.action() == etcdserverpb::AlarmRequest::GET) {
    for (auto& a : List(r.alarm())) *resp.add_alarms() = std::move(a);
    return resp;
  }
  std::pair<uint64_t, int> key{r.memberid(), static_cast<int>(r.alarm())};
  absl::MutexLock l(&mu_);
  bool present = alarms_.count(key) > 0;
  if (r.action() == etcdserverpb::AlarmRequest::ACTIVATE) {
    if (!present) {
      CAIRN_CHECK(
          wb->Put(backend_->cf(storage::Cf::kMeta), AlarmKey(r.memberid(), r.alarm()), "").ok());
      alarms_.insert(key);
    }
  } else {
    if (!present) return resp;
    CAIRN_CHECK(
        wb->Delete(backend_->cf(storage::Cf::kMeta), AlarmKey(r.memberid(), r.alarm())).ok());
    alarms_.erase(key);
  }
  auto* m = resp.add_alarms();
  m->set_memberid(r.memberid());
  m->set_alarm(r.alarm());
  UpdateFlagsLocked();
  return resp;
}

std::vector<etcdserverpb::AlarmMember> Alarms::List(etcdserverpb::AlarmType type) const {
  std::vector<etcdserverpb::AlarmMember> out;
  absl::MutexLock l(&mu_);
  for (const auto& [id, t] : alarms_) {
    if (type != etcdserverpb::NONE && t != static_cast<int>(type)) continue;
    etcdserverpb::AlarmMember m;
    m.set_memberid(id);
    m.set_alarm(static_cast<etcdserverpb::AlarmType>(t));
    out.push_back(std::move(m));
  }
  return out;
}

void Alarms::UpdateFlagsLocked() {
  bool nospace = false, corrupt = false;
  for (const auto& [id, t] : alarms_) {
    nospace |= t == etcdserverpb::NOSPACE;
    corrupt |= t == etcdserverpb::CORRUPT;
  }
  nospace_.store(nospace, std::memory_order_release);
  corrupt_.store(corrupt, std::memory_order_release);
}

}  // namespace cairn::etcdserver
