#include "tests/sim/member_sim.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cairnpb/internal.pb.h"
#include "rocksdb/utilities/checkpoint.h"
#include "server/base/check.h"
#include "server/base/clock.h"
#include "server/base/fault_injection_env.h"
#include "server/etcdserver/applier.h"
#include "server/etcdserver/membership.h"
#include "server/etcdserver/raft_driver.h"
#include "server/etcdserver/wait_registry.h"
#include "server/lease/lessor.h"
#include "server/mvcc/kv_store.h"
#include "server/mvcc/watch_hub.h"
#include "server/raft/config.h"
#include "server/raft/message.h"
#include "server/storage/backend.h"
#include "server/storage/snapshot.h"
#include "server/wal/wal.h"

namespace cairn::etcdserver::sim {
namespace {

uint64_t g_current_seed = 0;
int g_current_members = 0;

constexpr int64_t kStepMs = 10;
constexpr int64_t kHeartbeatMs = 100;
constexpr int64_t kElectionMs = 1000;
constexpr int kKeys = 6;

uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9e3779b97f4a7c15ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Fnv(uint64_t h, std::string_view s) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}
constexpr uint64_t kFnvBasis = 1469598103934665603ull;

uint64_t EntryHash(const raft::Entry& e) {
  uint64_t h = Mix(e.term, static_cast<uint64_t>(e.type));
  return Fnv(h, e.data);
}

// Simulated time: only the simulation moves it.
class SimClock final : public base::Clock {
 public:
  int64_t NowMs() override { return now_ms_; }
  int64_t WallMs() override { return 1'700'000'000'000 + now_ms_; }
  void Advance(int64_t ms) { now_ms_ += ms; }

 private:
  int64_t now_ms_ = 0;
};

std::string Key(int k) { return absl::StrCat("k", k); }

// What a client was told.
struct Ack {
  enum Kind { kPut, kDelete, kTxn } kind = kPut;
  uint64_t via = 0;  // the member that answered
  std::string key;
  std::string value;  // put: written; txn: the written value of the branch taken
  // Txn: if value(compare_key) == compare_value then put(key=then_key) else put(else_key).
  std::string compare_key, compare_value, then_key, else_key;
  bool succeeded = false;
  int64_t deleted = 0;
  int64_t revision = 0;
};

// One in-flight message.
struct Packet {
  uint64_t from = 0;
  uint64_t from_incarnation = 0;
  uint64_t to = 0;
  std::string encoded;  // raft::EncodeMessage
  bool snapshot = false;
  std::string dump;  // kSnap: the sender's state-machine dump
};

class Simulation;

// One member: what survives a crash (the Env, the directories) and one incarnation's objects.
struct Member {
  uint64_t id = 0;
  std::string dir;  // data dir on the real file system (RocksDB, received snapshots)
  std::unique_ptr<base::FaultInjectionEnv> env;
  bool up = false;
  uint64_t incarnation = 0;
  int64_t restart_at_ms = -1;
  bool sync_crash_scheduled = false;
  // The store as of its last Backend::Sync (a RocksDB checkpoint in dir/synced) and its applied
  // index then; kept only in seeds that roll stores back at a crash.
  bool has_synced_checkpoint = false;
  uint64_t synced_applied = 0;

  // The incarnation (destroyed in reverse order: driver first, backend last).
  std::unique_ptr<storage::Backend> backend;
  std::unique_ptr<Membership> membership;
  std::unique_ptr<mvcc::KvStore> kv;
  std::unique_ptr<mvcc::WatchHub> hub;
  std::unique_ptr<lease::Lessor> lessor;
  std::unique_ptr<WaitRegistry> waits;
  std::unique_ptr<Applier> applier;
  std::unique_ptr<RaftDriver> raft;

  // Checks.
  uint64_t handled_upto = 0;    // this incarnation: last entry handed to the applier
  uint64_t written_before = 0;  // last entry handled by an earlier incarnation
  uint64_t written_this = 0;    // last entry handled by this incarnation
  uint64_t next_request_id = 1;
};

class Simulation {
 public:
  explicit Simulation(const MemberSimOptions& o)
      : o_(o),
        rng_(Mix(o.seed, 0x51)),
        client_rng_(Mix(o.seed, 0x77)),
        store_rng_(Mix(o.seed, 0x99)),
        transfer_rng_(Mix(o.seed, 0xab)) {
    // Per-seed knobs: each seed explores a different corner.
    loss_permille_ = Pick(0, 3) == 0 ? 0 : Pick(5, 120);
    dup_permille_ = Pick(0, 30);
    max_delay_ms_ = Pick(1, 4) * 20;
    crash_per_10s_ = Pick(0, 6);
    partition_per_10s_ = Pick(0, 6);
    ops_per_step_permille_ = Pick(150, 600);
    snapshot_count_ = Pick(0, 2) == 0 ? 100000 : Pick(8, 60);
    catch_up_ = Pick(2, 20);
    // From a stream of its own, so seeds without store rollbacks replay as before they existed.
    rollback_permille_ = store_rng_() % 2 == 0 ? 0 : 500;
    // Likewise: leadership transfers in half of the seeds.
    transfers_per_10s_ =
        transfer_rng_() % 2 == 0 ? 0 : static_cast<int64_t>(1 + transfer_rng_() % 8);
  }

  ~Simulation() {
    for (auto& m : members_) Destroy(*m);
    std::error_code ec;
    if (!root_.empty()) std::filesystem::remove_all(root_, ec);
  }

  MemberSimResult Run() {
    Setup();
    const int64_t end_chaos = o_.chaos_ms;
    while (!failed() && clock_.NowMs() < end_chaos) {
      Chaos();
      Step();
    }
    if (!failed()) Heal();
    if (!failed()) Converge();
    if (!failed()) CheckFinal();
    result_.sim_ms = clock_.NowMs();
    return result_;
  }

 private:
  bool failed() const { return !result_.ok; }
  void Fail(const std::string& why) {
    if (failed()) return;
    result_.ok = false;
    std::ostringstream os;
    os << "t=" << clock_.NowMs() << "ms: " << why;
    result_.failure = os.str();
    Trace(result_.failure);
  }
  void Trace(const std::string& what) {
    if (o_.trace) std::cerr << "[" << clock_.NowMs() << "ms] " << what << "\n";
  }
  int64_t Pick(int64_t lo, int64_t hi) {  // [lo, hi]
    return lo + static_cast<int64_t>(rng_() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(int64_t permille) { return Pick(0, 999) < permille; }
  Member& M(uint64_t id) { return *members_[id - 1]; }

  // ---- setup ----

  void Setup() {
    g_current_seed = o_.seed;
    g_current_members = o_.members;
    std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = base + "/cairn-msim-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    CAIRN_CHECK(mkdtemp(buf.data()) != nullptr) << "mkdtemp " << tmpl;
    root_ = buf.data();
    Trace(absl::StrCat("seed ", o_.seed, " members ", o_.members, " loss ", loss_permille_,
                       "‰ dup ", dup_permille_, "‰ delay<=", max_delay_ms_, "ms crashes ",
                       crash_per_10s_, "/10s partitions ", partition_per_10s_,
                       "/10s snapshot_count ", snapshot_count_, " catch_up ", catch_up_,
                       " store rollbacks ", rollback_permille_, "‰ transfers ", transfers_per_10s_,
                       "/10s"));
    // The bootstrap log every member starts from (Server::BootstrapNew): one AddNode per member.
    std::vector<raft::Entry> initial;
    for (int i = 1; i <= o_.members; ++i) {
      cairnpb::InternalRequest ctx;
      cairnpb::Member* m = ctx.mutable_member_change();
      m->set_id(i);
      m->set_name(absl::StrCat("m", i));
      m->add_peer_urls(absl::StrCat("http://sim-", i, ":2380"));
      raft::Entry e;
      e.term = 1;
      e.index = i;
      e.type = raft::EntryType::kConfChange;
      e.data = raft::EncodeConfChange(raft::ConfChange{
          raft::ConfChangeType::kAddNode, static_cast<uint64_t>(i), ctx.SerializeAsString()});
      initial.push_back(std::move(e));
    }
    for (int i = 1; i <= o_.members; ++i) {
      auto m = std::make_unique<Member>();
      m->id = i;
      m->dir = absl::StrCat(root_, "/m", i);
      std::filesystem::create_directories(m->dir + "/snap");
      m->env = std::make_unique<base::FaultInjectionEnv>(Mix(o_.seed, 100 + i));
      CAIRN_CHECK_OK(m->env->CreateDir("/m"));
      members_.push_back(std::move(m));
    }
    for (auto& m : members_) {
      auto durable = RaftDriver::CreateDurable(m->env.get(), "/m/wal", initial, WalOptions());
      CAIRN_CHECK(durable.ok()) << durable.status();
      Open(*m, std::move(*durable));
    }
  }

  static wal::WalOptions WalOptions() {
    wal::WalOptions w;
    w.segment_bytes = 64 << 10;  // small segments: rollovers and releases happen
    return w;
  }

  // Opens an incarnation of `m` over `durable` (created, or recovered from its Env).
  void Open(Member& m, RaftDriver::Durable durable) {
    ++m.incarnation;
    auto b = storage::Backend::Open(m.dir + "/db");
    CAIRN_CHECK(b.ok()) << b.status();
    m.backend = std::move(*b);
    if (rollback_permille_ > 0) {
      Member* mp = &m;
      m.backend->SetAfterSyncHookForTesting([this, mp] { CheckpointSynced(*mp); });
    }
    CAIRN_CHECK_OK(storage::ResumePendingInstall(m.backend.get()));
    uint64_t store_applied = static_cast<uint64_t>(m.backend->ReadMetaInt("applied_index", 0));
    if (store_applied < durable.snapshot_index) {
      Fail(absl::StrCat("member ", m.id, ": store applied index ", store_applied,
                        " is behind the WAL's snapshot ", durable.snapshot_index));
    }
    m.membership = std::make_unique<Membership>(m.backend.get());
    m.membership->Load();
    m.kv = std::make_unique<mvcc::KvStore>(m.backend.get());
    m.hub = std::make_unique<mvcc::WatchHub>(m.kv.get(), 0);
    base::Clock* clock = &clock_;
    m.lessor = std::make_unique<lease::Lessor>([clock] { return clock->NowMs(); }, 2);
    m.lessor->Restore(m.kv->Leases());
    m.waits = std::make_unique<WaitRegistry>(5000);

    Applier::Deps deps;
    deps.backend = m.backend.get();
    deps.kv = m.kv.get();
    deps.watch_hub = m.hub.get();
    deps.lessor = m.lessor.get();
    deps.membership = m.membership.get();
    deps.waits = m.waits.get();
    deps.member_id = m.id;
    deps.max_batch_entries = 64;
    Applier::Hooks hooks;
    Member* mp = &m;
    hooks.on_applied = [mp](std::vector<std::pair<uint64_t, raft::ConfChange>> confs,
                            uint64_t applied) { mp->raft->OnApplied(std::move(confs), applied); };
    hooks.on_entry = [this, mp](const raft::Entry& e) { OnEntry(*mp, e); };
    hooks.on_installed = [this, mp](uint64_t applied) {
      ++result_.snapshots_installed;
      Trace(absl::StrCat("m", mp->id, " installed a snapshot: applied ", applied));
      mp->handled_upto = applied;
    };
    m.applier = std::make_unique<Applier>(deps, std::move(hooks));
    m.handled_upto = m.kv->applied_index();
    m.written_this = 0;

    raft::Config rc;
    rc.id = m.id;
    rc.heartbeat_tick = 1;
    rc.election_tick = static_cast<int>(kElectionMs / kHeartbeatMs);
    rc.random_seed = Mix(o_.seed, m.id * 1000 + m.incarnation);
    CAIRN_CHECK_OK(RaftDriver::CreateNode(rc, &durable));

    RaftDriver::Deps rd;
    rd.member_id = m.id;
    rd.heartbeat_interval_ms = kHeartbeatMs;
    rd.election_timeout_ms = kElectionMs;
    rd.request_timeout_ms = 5000 + 2 * kElectionMs;
    rd.leader_wait_ms = 2 * kElectionMs + 1000;
    rd.snapshot_count = static_cast<uint64_t>(snapshot_count_);
    rd.snapshot_catch_up_entries = static_cast<uint64_t>(catch_up_);
    rd.clock = &clock_;
    rd.backend = m.backend.get();
    rd.membership = m.membership.get();
    rd.applier = m.applier.get();
    rd.waits = m.waits.get();
    rd.reads = nullptr;  // the simulation issues no ReadIndex
    rd.on_leader_change = [this, mp](uint64_t leader, bool) {
      ++result_.leader_changes;
      Trace(absl::StrCat("m", mp->id, " sees leader ", leader, " term ", mp->raft->term()));
    };
    m.raft = std::make_unique<RaftDriver>(std::move(rd), std::move(durable));
    const uint64_t incarnation = m.incarnation;
    m.raft->AttachSender([this, mp, incarnation](std::vector<raft::Message> messages) {
      Send(*mp, incarnation, std::move(messages));
    });
    m.up = true;
    m.raft->StartStepped();
    Trace(absl::StrCat("m", m.id, " up (incarnation ", m.incarnation, "), store applied ",
                       m.kv->applied_index(), ", revision ", m.kv->View().revision));
  }

  // After each Backend::Sync: what a power failure could roll the store back to at most.
  void CheckpointSynced(Member& m) {
    const std::string tmp = m.dir + "/synced.tmp";
    const std::string synced = m.dir + "/synced";
    std::filesystem::remove_all(tmp);
    rocksdb::Checkpoint* raw = nullptr;
    CAIRN_CHECK(rocksdb::Checkpoint::Create(m.backend->db(), &raw).ok());
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    // No memtable flush: the checkpoint copies RocksDB's (just synced) WAL instead.
    rocksdb::Status st = cp->CreateCheckpoint(tmp, std::numeric_limits<uint64_t>::max());
    CAIRN_CHECK(st.ok()) << st.ToString();
    std::filesystem::remove_all(synced);
    std::filesystem::rename(tmp, synced);
    m.has_synced_checkpoint = true;
    m.synced_applied = static_cast<uint64_t>(m.backend->ReadMetaInt("applied_index", 0));
  }

  void Destroy(Member& m) {
    m.raft.reset();
    m.applier.reset();
    m.waits.reset();  // pending requests are never answered: the client does not know
    m.lessor.reset();
    m.hub.reset();
    m.kv.reset();
    m.membership.reset();
    m.backend.reset();
    m.up = false;
  }

  // ---- the applier's view ----

  void OnEntry(Member& m, const raft::Entry& e) {
    if (e.index != m.handled_upto + 1) {
      Fail(absl::StrCat("member ", m.id, ": applier handled entry ", e.index, " after ",
                        m.handled_upto, " (an index skipped or repeated)"));
    }
    m.handled_upto = e.index;
    // Every entry handled writes the applied index with its changes (empty ones too), and the
    // store keeps its writes across a crash (see the header), so none is ever handled again.
    if (e.index <= m.written_before) {
      Fail(absl::StrCat("member ", m.id, ": entry ", e.index,
                        " applied again after a restart (it was applied up to ", m.written_before,
                        ")"));
    }
    m.written_this = std::max(m.written_this, e.index);
    auto [it, inserted] = entries_.emplace(e.index, EntryHash(e));
    if (!inserted && it->second != EntryHash(e)) {
      Fail(absl::StrCat("member ", m.id, ": applied a different entry at index ", e.index,
                        " than another member (term ", e.term, ")"));
    }
  }

  // ---- network ----

  void Send(Member& m, uint64_t incarnation, std::vector<raft::Message> messages) {
    // A member whose Env crashed at a sync is dead from that sync on: nothing more leaves it.
    if (!m.up || m.incarnation != incarnation || m.env->crashed()) return;
    for (raft::Message& msg : messages) {
      Packet p;
      p.from = m.id;
      p.from_incarnation = incarnation;
      p.to = msg.to;
      if (msg.type == raft::MessageType::kSnap) {
        p.snapshot = true;
        mvcc::ReadView view = m.kv->View();
        CAIRN_CHECK_OK(storage::ExportSnapshot(m.backend.get(), view.snapshot.get(),
                                               [&p](std::string_view chunk) {
                                                 p.dump.append(chunk);
                                                 return true;
                                               }));
        ++result_.snapshots_sent;
        Trace(absl::StrCat("m", m.id, " sends a snapshot at ", msg.snapshot->metadata.index,
                           " to m", msg.to));
      }
      p.encoded = raft::EncodeMessage(msg);
      if (Cut(p.from, p.to) || Chance(loss_permille_)) {
        if (p.snapshot) snapshot_reports_.push_back({p.from, incarnation, p.to, false});
        continue;
      }
      int copies = !p.snapshot && Chance(dup_permille_) ? 2 : 1;
      for (int c = 0; c < copies; ++c) {
        int64_t at = clock_.NowMs() + Pick(0, max_delay_ms_);
        network_.emplace(std::make_pair(at, seq_++), p);
      }
    }
  }

  bool Cut(uint64_t from, uint64_t to) const { return cut_.count({from, to}) > 0; }

  void Deliver() {
    const int64_t now = clock_.NowMs();
    while (!network_.empty() && network_.begin()->first.first <= now) {
      Packet p = std::move(network_.begin()->second);
      network_.erase(network_.begin());
      Member& to = M(p.to);
      if (!to.up || to.env->crashed() || Cut(p.from, p.to)) {
        if (p.snapshot) snapshot_reports_.push_back({p.from, p.from_incarnation, p.to, false});
        continue;
      }
      auto msg = raft::DecodeMessage(p.encoded);
      CAIRN_CHECK(msg.ok()) << msg.status();
      ++result_.messages_delivered;
      if (p.snapshot) {
        std::string path = absl::StrCat(to.dir, "/snap/", seq_++, ".snap");
        {
          std::ofstream out(path, std::ios::binary);
          out.write(p.dump.data(), static_cast<std::streamsize>(p.dump.size()));
        }
        CAIRN_CHECK_OK(storage::VerifySnapshotFile(path));
        to.raft->StepSnapshot(std::move(*msg), path);
        snapshot_reports_.push_back({p.from, p.from_incarnation, p.to, true});
      } else {
        to.raft->Step(std::move(*msg));
      }
    }
    for (const auto& r : snapshot_reports_) {
      Member& from = M(r.from);
      if (from.up && from.incarnation == r.incarnation) from.raft->ReportSnapshot(r.to, r.ok);
    }
    snapshot_reports_.clear();
  }

  // ---- faults ----

  void Chaos() {
    const int64_t now = clock_.NowMs();
    // Crashes: about crash_per_10s_ per 10 s of simulated time.
    if (crash_per_10s_ > 0 && Pick(0, 10000 / kStepMs - 1) < crash_per_10s_) {
      Member& m = M(static_cast<uint64_t>(Pick(1, o_.members)));
      if (m.up && !m.sync_crash_scheduled) {
        if (Chance(300)) {
          uint64_t n = static_cast<uint64_t>(Pick(1, 4));
          m.env->ScheduleCrash(n, Chance(500) ? base::FaultInjectionEnv::CrashMode::kTornWrites
                                              : base::FaultInjectionEnv::CrashMode::kDropUnsynced);
          m.sync_crash_scheduled = true;
          Trace(absl::StrCat("m", m.id, " will crash at its WAL sync ", n, " from now"));
        } else {
          Crash(m, Chance(300) ? base::FaultInjectionEnv::CrashMode::kTornWrites
                               : base::FaultInjectionEnv::CrashMode::kDropUnsynced);
        }
      }
    }
    // Partitions.
    if (partition_per_10s_ > 0 && Pick(0, 10000 / kStepMs - 1) < partition_per_10s_) {
      if (!cut_.empty() && Chance(500)) {
        cut_.clear();
        Trace("partition healed");
      } else {
        cut_.clear();
        std::ostringstream os;
        if (Chance(500)) {  // symmetric: two sides
          std::vector<int> side(o_.members + 1);
          for (int i = 1; i <= o_.members; ++i) side[i] = static_cast<int>(Pick(0, 1));
          for (int i = 1; i <= o_.members; ++i) {
            for (int j = 1; j <= o_.members; ++j) {
              if (side[i] != side[j]) cut_.insert({i, j});
            }
            os << " m" << i << ":" << side[i];
          }
          Trace("partition" + os.str());
        } else {  // asymmetric: a few single directions
          int n = static_cast<int>(Pick(1, o_.members));
          for (int k = 0; k < n; ++k) {
            uint64_t a = static_cast<uint64_t>(Pick(1, o_.members));
            uint64_t b = static_cast<uint64_t>(Pick(1, o_.members));
            if (a != b) cut_.insert({a, b});
            os << " m" << a << "->m" << b;
          }
          Trace("cut" + os.str());
        }
      }
    }
    for (auto& mp : members_) {
      if (!mp->up && mp->restart_at_ms >= 0 && now >= mp->restart_at_ms) Restart(*mp);
    }
    // Clients.
    if (Pick(0, 999) < ops_per_step_permille_) ProposeRandom();
    // Leadership transfers (MoveLeader): about transfers_per_10s_ per 10 s.
    if (transfers_per_10s_ > 0 &&
        static_cast<int64_t>(transfer_rng_() % (10000 / kStepMs)) < transfers_per_10s_) {
      TransferLeader();
    }
  }

  // Asks the member that leads to hand leadership to another member, as Server::MoveLeader does.
  void TransferLeader() {
    for (auto& mp : members_) {
      if (!mp->up || mp->env->crashed() || mp->raft->leader() != mp->id) continue;
      uint64_t target = 1 + transfer_rng_() % static_cast<uint64_t>(o_.members);
      Trace(absl::StrCat("m", mp->id, " asked to transfer leadership to m", target));
      const uint64_t id = mp->id;
      mp->raft->TransferLeader(target, [this, id, target](absl::Status st) {
        if (st.ok()) ++result_.transfers;
        Trace(absl::StrCat("m", id, " transfer to m", target, ": ", st.ToString()));
      });
      return;
    }
  }

  void Crash(Member& m, base::FaultInjectionEnv::CrashMode mode) {
    ++result_.crashes;
    Trace(absl::StrCat(
        "m", m.id, " crashes (",
        mode == base::FaultInjectionEnv::CrashMode::kTornWrites ? "torn writes" : "drop unsynced",
        ")"));
    m.written_before = std::max(m.written_before, m.written_this);
    m.written_this = 0;
    Destroy(m);
    if (!m.env->crashed()) m.env->SimulateCrash(mode);
    if (rollback_permille_ > 0 && static_cast<int64_t>(store_rng_() % 1000) < rollback_permille_) {
      // The store loses every write since its last sync (RocksDB's unsynced WAL tail).
      std::filesystem::remove_all(m.dir + "/db");
      if (m.has_synced_checkpoint) {
        std::filesystem::copy(m.dir + "/synced", m.dir + "/db",
                              std::filesystem::copy_options::recursive);
      }
      m.written_before = m.has_synced_checkpoint ? m.synced_applied : 0;
      Trace(absl::StrCat("m", m.id, " store rolled back to its last sync (applied ",
                         m.written_before, ")"));
    }
    m.restart_at_ms = clock_.NowMs() + Pick(1, 30) * 100;
  }

  void Restart(Member& m) {
    m.env->Restart();
    m.sync_crash_scheduled = false;
    m.restart_at_ms = -1;
    auto durable = RaftDriver::RecoverDurable(m.env.get(), "/m/wal", WalOptions());
    CAIRN_CHECK(durable.ok()) << "member " << m.id << ": " << durable.status();
    Open(m, std::move(*durable));
  }

  void Heal() {
    Trace("heal: no more faults");
    cut_.clear();
    loss_permille_ = 0;
    dup_permille_ = 0;
    for (auto& mp : members_) {
      if (mp->up && mp->sync_crash_scheduled) {
        if (mp->env->crashed()) {
          Crash(*mp, base::FaultInjectionEnv::CrashMode::kDropUnsynced);
        } else {
          mp->env->Restart();  // cancels the scheduled crash
          mp->sync_crash_scheduled = false;
        }
      }
      if (!mp->up) Restart(*mp);
    }
  }

  // ---- one step of simulated time ----

  void Step() {
    clock_.Advance(kStepMs);
    Deliver();
    for (auto& mp : members_) {
      Member& m = *mp;
      if (!m.up) continue;
      m.raft->RunOnce();
      if (m.env->crashed()) {  // a scheduled crash happened at a sync in this iteration
        Crash(m, base::FaultInjectionEnv::CrashMode::kDropUnsynced);
        continue;
      }
      m.applier->RunQueued();
    }
    CheckLeaders();
    CheckLocalReads();
  }

  // A member that would serve linearizable reads without raft (RaftDriver::LocalReadIndex, a lone
  // voter's leader) must cover every entry any member has handed its applier: a read there sees
  // every write anyone could have acknowledged. With 3 to 5 voters it must never be set.
  void CheckLocalReads() {
    for (auto& mp : members_) {
      const uint64_t local = mp->up ? mp->raft->LocalReadIndex() : 0;
      if (local == 0) continue;
      for (auto& other : members_) {
        if (other->up && other->raft->committed_index() > local) {
          Fail(absl::StrCat("m", mp->id, " would read locally at ", local, " but m", other->id,
                            " has committed ", other->raft->committed_index()));
        }
      }
    }
  }

  void CheckLeaders() {
    for (auto& mp : members_) {
      if (!mp->up || mp->raft->leader() != mp->id) continue;
      uint64_t term = mp->raft->term();
      auto [it, inserted] = leaders_.emplace(term, mp->id);
      if (!inserted && it->second != mp->id) {
        Fail(absl::StrCat("two leaders in term ", term, ": m", it->second, " and m", mp->id));
      }
    }
  }

  // ---- clients ----

  void ProposeRandom() {
    std::vector<Member*> up;
    for (auto& mp : members_) {
      if (mp->up && !mp->env->crashed()) up.push_back(mp.get());
    }
    if (up.empty()) return;
    Member& m = *up[client_rng_() % up.size()];
    cairnpb::InternalRequest r;
    auto ack = std::make_shared<Ack>();
    ack->via = m.id;
    const uint64_t op = client_rng_() % 10;
    const std::string value = absl::StrCat("v", value_seq_++);
    if (op < 6) {
      ack->kind = Ack::kPut;
      ack->key = Key(static_cast<int>(client_rng_() % kKeys));
      ack->value = value;
      r.mutable_put()->set_key(ack->key);
      r.mutable_put()->set_value(value);
    } else if (op < 7) {
      ack->kind = Ack::kDelete;
      ack->key = Key(static_cast<int>(client_rng_() % kKeys));
      r.mutable_delete_range()->set_key(ack->key);
    } else {
      ack->kind = Ack::kTxn;
      ack->compare_key = Key(static_cast<int>(client_rng_() % kKeys));
      // Compare against a value written recently, so both branches happen.
      ack->compare_value =
          absl::StrCat("v", value_seq_ > 3 ? value_seq_ - 1 - client_rng_() % 3 : 0);
      ack->then_key = Key(static_cast<int>(client_rng_() % kKeys));
      ack->else_key = Key(static_cast<int>(client_rng_() % kKeys));
      ack->value = value;
      etcdserverpb::TxnRequest* t = r.mutable_txn();
      etcdserverpb::Compare* c = t->add_compare();
      c->set_key(ack->compare_key);
      c->set_target(etcdserverpb::Compare::VALUE);
      c->set_result(etcdserverpb::Compare::EQUAL);
      c->set_value(ack->compare_value);
      etcdserverpb::PutRequest* then_put = t->add_success()->mutable_request_put();
      then_put->set_key(ack->then_key);
      then_put->set_value(value);
      etcdserverpb::PutRequest* else_put = t->add_failure()->mutable_request_put();
      else_put->set_key(ack->else_key);
      else_put->set_value(value);
    }
    // As Server::ProposeInternal does.
    const uint64_t id = (m.incarnation << 32) | m.next_request_id++;
    r.set_id(id);
    r.set_proposer(m.id);
    ++result_.proposals;
    Waiter w;
    w.done = [this, ack](mvcc::ApplyResult res) {
      if (!res.status.ok()) return;
      switch (ack->kind) {
        case Ack::kPut:
          ack->revision = res.put.header().revision();
          break;
        case Ack::kDelete:
          ack->revision = res.delete_range.header().revision();
          ack->deleted = res.delete_range.deleted();
          break;
        case Ack::kTxn:
          ack->revision = res.txn.header().revision();
          ack->succeeded = res.txn.succeeded();
          ack->key = ack->succeeded ? ack->then_key : ack->else_key;
          break;
      }
      ++result_.acknowledged;
      acks_.push_back(*ack);
    };
    absl::Status st = m.raft->Propose(id, r.SerializeAsString(), w);
    if (!st.ok()) w.Fail(st);
  }

  // ---- the end ----

  // Runs until every member has applied a final write proposed after healing.
  void Converge() {
    const int64_t deadline = clock_.NowMs() + o_.liveness_ms;
    auto final_ack = std::make_shared<int64_t>(0);
    int64_t next_try = 0;
    while (!failed()) {
      if (clock_.NowMs() >= deadline) {
        std::ostringstream os;
        os << "liveness: no final write applied on every member within " << o_.liveness_ms
           << "ms after healing;";
        for (auto& mp : members_) {
          os << " m" << mp->id << "{leader " << mp->raft->leader() << " term " << mp->raft->term()
             << " applied " << mp->applier->applied_index() << " revision "
             << mp->kv->View().revision << "}";
        }
        Fail(os.str());
        return;
      }
      if (*final_ack == 0 && clock_.NowMs() >= next_try) {
        // Through whichever member leads (any member would do; the leader answers fastest).
        for (auto& mp : members_) {
          if (mp->raft->leader() != mp->id) continue;
          cairnpb::InternalRequest r;
          r.mutable_put()->set_key("final");
          r.mutable_put()->set_value(absl::StrCat("final@", clock_.NowMs()));
          const uint64_t id = (mp->incarnation << 32) | mp->next_request_id++;
          r.set_id(id);
          r.set_proposer(mp->id);
          Waiter w;
          w.done = [final_ack](mvcc::ApplyResult res) {
            if (res.status.ok()) *final_ack = res.put.header().revision();
          };
          absl::Status st = mp->raft->Propose(id, r.SerializeAsString(), w);
          if (!st.ok()) w.Fail(st);
          break;
        }
        next_try = clock_.NowMs() + 2 * kElectionMs;
      }
      Step();
      if (*final_ack == 0) continue;
      bool all = true;
      uint64_t applied = members_[0]->applier->applied_index();
      for (auto& mp : members_) {
        all = all && mp->kv->View().revision >= *final_ack &&
              mp->applier->applied_index() == applied && mp->raft->last_index() == applied;
      }
      if (all) break;
    }
    Trace(absl::StrCat("converged: final write at revision ", *final_ack));
  }

  static uint64_t KvHash(Member& m) {
    mvcc::ReadView view = m.kv->View();
    uint64_t h = kFnvBasis;
    CAIRN_CHECK_OK(
        storage::ExportSnapshot(m.backend.get(), view.snapshot.get(), [&h](std::string_view chunk) {
          h = Fnv(h, chunk);
          return true;
        }));
    return h;
  }

  void CheckFinal() {
    // Same revision, applied index and KV hash everywhere.
    Member& first = *members_[0];
    const int64_t rev = first.kv->View().revision;
    const uint64_t hash = KvHash(first);
    for (auto& mp : members_) {
      int64_t r = mp->kv->View().revision;
      uint64_t h = KvHash(*mp);
      Trace(absl::StrCat("m", mp->id, ": revision ", r, " applied ", mp->applier->applied_index(),
                         " kv hash ", h));
      if (r != rev || h != hash) {
        Fail(absl::StrCat("members diverged: m1 revision ", rev, " hash ", hash, ", m", mp->id,
                          " revision ", r, " hash ", h));
        return;
      }
    }
    result_.final_revision = rev;
    // Every acknowledged write survives, on every member.
    std::map<int64_t, const Ack*> by_revision;
    for (const Ack& a : acks_) {
      if (a.revision == 0 || (a.kind == Ack::kDelete && a.deleted == 0)) continue;
      auto [it, inserted] = by_revision.emplace(a.revision, &a);
      if (!inserted) {
        Fail(absl::StrCat("two acknowledged writes at revision ", a.revision));
        return;
      }
    }
    for (auto& mp : members_) {
      for (const Ack& a : acks_) {
        if (!CheckAck(*mp, a)) return;
      }
    }
  }

  // The value of `key` at `revision` on `m` (nullopt: no such key then).
  std::optional<std::string> ValueAt(Member& m, const std::string& key, int64_t revision,
                                     int64_t* mod_revision) {
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    req.set_revision(revision);
    auto resp = m.kv->Range(m.kv->View(), req);
    CAIRN_CHECK(resp.ok()) << resp.status();
    if (resp->kvs_size() == 0) return std::nullopt;
    if (mod_revision) *mod_revision = resp->kvs(0).mod_revision();
    return resp->kvs(0).value();
  }

  bool CheckAck(Member& m, const Ack& a) {
    std::ostringstream what;
    int64_t mod = 0;
    switch (a.kind) {
      case Ack::kPut:
      case Ack::kTxn: {
        auto v = ValueAt(m, a.key, a.revision, &mod);
        if (!v || *v != a.value || mod != a.revision) {
          what << (a.kind == Ack::kPut ? "put " : "txn put ") << a.key << "=" << a.value
               << " acknowledged by m" << a.via << " at revision " << a.revision << " is "
               << (v ? "\"" + *v + "\" (mod_revision " + std::to_string(mod) + ")" : "missing")
               << " there on m" << m.id;
          break;
        }
        if (a.kind == Ack::kTxn) {
          auto c = ValueAt(m, a.compare_key, a.revision - 1, nullptr);
          bool equal = c && *c == a.compare_value;
          if (equal != a.succeeded) {
            what << "txn at revision " << a.revision << " answered succeeded=" << a.succeeded
                 << " but " << a.compare_key << " was " << (c ? *c : "missing") << " before it"
                 << " on m" << m.id;
          }
        }
        break;
      }
      case Ack::kDelete:
        if (a.deleted > 0 && ValueAt(m, a.key, a.revision, nullptr)) {
          what << "delete of " << a.key << " acknowledged at revision " << a.revision
               << " did not happen on m" << m.id;
        }
        break;
    }
    if (what.str().empty()) return true;
    Fail(what.str());
    return false;
  }

  struct SnapshotReport {
    uint64_t from;
    uint64_t incarnation;
    uint64_t to;
    bool ok;
  };

  const MemberSimOptions o_;
  std::mt19937_64 rng_;
  std::mt19937_64 client_rng_;
  std::mt19937_64 store_rng_;
  std::mt19937_64 transfer_rng_;
  MemberSimResult result_;
  SimClock clock_;
  std::string root_;
  std::vector<std::unique_ptr<Member>> members_;
  std::multimap<std::pair<int64_t, uint64_t>, Packet> network_;  // (deliver at, seq)
  uint64_t seq_ = 0;
  std::set<std::pair<uint64_t, uint64_t>> cut_;  // (from, to) links that drop everything
  std::vector<SnapshotReport> snapshot_reports_;
  std::map<uint64_t, uint64_t> entries_;  // index -> hash of the entry applied there
  std::map<uint64_t, uint64_t> leaders_;  // term -> leader
  std::vector<Ack> acks_;
  uint64_t value_seq_ = 0;

  int64_t loss_permille_;
  int64_t dup_permille_;
  int64_t max_delay_ms_;
  int64_t crash_per_10s_;
  int64_t partition_per_10s_;
  int64_t ops_per_step_permille_;
  int64_t snapshot_count_;
  int64_t catch_up_;
  int64_t rollback_permille_;
  int64_t transfers_per_10s_;  // chance that a crash rolls the store back to its last sync
};

}  // namespace

MemberSimResult RunMemberSimulation(const MemberSimOptions& options) {
  Simulation sim(options);
  return sim.Run();
}

uint64_t CurrentMemberSimSeed() { return g_current_seed; }
int CurrentMemberSimMembers() { return g_current_members; }

}  // namespace cairn::etcdserver::sim
