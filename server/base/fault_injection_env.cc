#include "server/base/fault_injection_env.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace cairn::base {

// One file's contents. `current` is what reads see; `durable` is what survives a crash; `pending`
// replays current from durable, in order (needed to keep a prefix on a torn crash).
struct FaultInjectionEnv::Node {
  struct Op {
    bool is_write;        // else a resize (Preallocate, Truncate)
    uint64_t offset = 0;  // write: where
    std::string data;     // write: what
    uint64_t size = 0;    // resize: new size
  };
  std::string durable;
  std::string current;
  std::vector<Op> pending;

  static void Apply(const Op& op, std::string* contents, size_t keep_bytes) {
    if (!op.is_write) {
      contents->resize(op.size, '\0');
      return;
    }
    size_t n = std::min(keep_bytes, op.data.size());
    if (contents->size() < op.offset + n) contents->resize(op.offset + n, '\0');
    contents->replace(op.offset, n, op.data, 0, n);
  }
};

// A directory change: link `node` at `path` (null node: unlink `path`); a rename is an unlink of
// `from` plus a link, applied together.
struct FaultInjectionEnv::DirOp {
  std::string dir;
  std::string path;
  std::shared_ptr<Node> node;
  std::string unlink_from;  // non-empty for a rename
};

class FaultInjectionEnv::File final : public WritableFile {
 public:
  File(FaultInjectionEnv* env, std::shared_ptr<Node> node, uint64_t generation)
      : env_(env), node_(std::move(node)), generation_(generation) {}

  absl::Status Append(std::string_view data) override ABSL_LOCKS_EXCLUDED(env_->mu_) {
    absl::MutexLock lock(&env_->mu_);
    if (env_->dead_) {
      position_ += data.size();
      return absl::OkStatus();
    }
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (env_->fail_writes_) return absl::InternalError("injected write error");
    Node::Op op{true, position_, std::string(data), 0};
    Node::Apply(op, &node_->current, op.data.size());
    node_->pending.push_back(std::move(op));
    position_ += data.size();
    return absl::OkStatus();
  }

  absl::Status Sync() override ABSL_LOCKS_EXCLUDED(env_->mu_) {
    absl::MutexLock lock(&env_->mu_);
    if (env_->dead_) return absl::OkStatus();
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (env_->fail_syncs_) return absl::InternalError("injected fsync error");
    if (env_->SyncCrashesLocked()) return absl::OkStatus();
    node_->durable = node_->current;
    node_->pending.clear();
    ++env_->file_syncs_;
    return absl::OkStatus();
  }

  absl::Status Preallocate(uint64_t size) override ABSL_LOCKS_EXCLUDED(env_->mu_) {
    absl::MutexLock lock(&env_->mu_);
    if (env_->dead_) return absl::OkStatus();
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (node_->current.size() >= size) return absl::OkStatus();
    Node::Op op{false, 0, "", size};
    Node::Apply(op, &node_->current, 0);
    node_->pending.push_back(std::move(op));
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override ABSL_LOCKS_EXCLUDED(env_->mu_) {
    absl::MutexLock lock(&env_->mu_);
    if (env_->dead_) {
      position_ = size;
      return absl::OkStatus();
    }
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (size > node_->current.size()) return absl::InvalidArgumentError("truncate past end");
    Node::Op op{false, 0, "", size};
    Node::Apply(op, &node_->current, 0);
    node_->pending.push_back(std::move(op));
    position_ = size;
    return absl::OkStatus();
  }

  uint64_t position() const override { return position_; }

 private:
  absl::Status CheckLive() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(env_->mu_) {
    if (generation_ != env_->generation_) {
      return absl::FailedPreconditionError("file handle opened before a simulated crash");
    }
    return absl::OkStatus();
  }

  FaultInjectionEnv* const env_;
  const std::shared_ptr<Node> node_;
  const uint64_t generation_;
  uint64_t position_ = 0;
};

// Reads a file's current contents from the front. It follows the node, not a copy: bytes appended
// after it was opened are read too, as on a real file system.
class FaultInjectionEnv::Reader final : public SequentialFile {
 public:
  Reader(FaultInjectionEnv* env, std::shared_ptr<Node> node, uint64_t generation)
      : env_(env), node_(std::move(node)), generation_(generation) {}

  absl::Status Read(size_t n, std::string* out) override ABSL_LOCKS_EXCLUDED(env_->mu_) {
    absl::MutexLock lock(&env_->mu_);
    out->clear();
    if (generation_ != env_->generation_) {
      return absl::FailedPreconditionError("file handle opened before a simulated crash");
    }
    const std::string& contents = node_->current;
    if (position_ >= contents.size()) return absl::OkStatus();
    size_t take = std::min<uint64_t>(n, contents.size() - position_);
    out->assign(contents, position_, take);
    position_ += take;
    return absl::OkStatus();
  }

 private:
  FaultInjectionEnv* const env_;
  const std::shared_ptr<Node> node_;
  const uint64_t generation_;
  uint64_t position_ = 0;
};

FaultInjectionEnv::FaultInjectionEnv(uint64_t seed) : rng_(seed) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

std::string FaultInjectionEnv::Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

void FaultInjectionEnv::ApplyDirOp(const DirOp& op,
                                   std::map<std::string, std::shared_ptr<Node>>* names) {
  if (!op.unlink_from.empty()) names->erase(op.unlink_from);
  if (op.node == nullptr) {
    names->erase(op.path);
  } else {
    (*names)[op.path] = op.node;
  }
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  if (dead_) return std::unique_ptr<WritableFile>(new File(this, std::make_shared<Node>(), 0));
  std::string dir = Parent(path);
  if (!dirs_.contains(dir)) return absl::NotFoundError(absl::StrCat("no directory for ", path));
  // Like O_TRUNC on a new inode's worth of state: a fresh node keeps the model simple (nothing in
  // cairn re-creates a file that is still linked).
  auto node = std::make_shared<Node>();
  DirOp op{dir, path, node, ""};
  ApplyDirOp(op, &current_names_);
  pending_dir_ops_.push_back(std::move(op));
  return std::unique_ptr<WritableFile>(new File(this, node, generation_));
}

absl::StatusOr<std::unique_ptr<WritableFile>> FaultInjectionEnv::ReopenWritableFile(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  if (dead_) return std::unique_ptr<WritableFile>(new File(this, std::make_shared<Node>(), 0));
  auto it = current_names_.find(path);
  if (it == current_names_.end()) return absl::NotFoundError(absl::StrCat("open ", path));
  return std::unique_ptr<WritableFile>(new File(this, it->second, generation_));
}

absl::StatusOr<std::unique_ptr<SequentialFile>> FaultInjectionEnv::NewSequentialFile(
    const std::string& path) {
  absl::MutexLock lock(&mu_);
  auto it = current_names_.find(path);
  if (it == current_names_.end()) return absl::NotFoundError(absl::StrCat("open ", path));
  return std::unique_ptr<SequentialFile>(new Reader(this, it->second, generation_));
}

absl::StatusOr<uint64_t> FaultInjectionEnv::GetFileSize(const std::string& path) {
  absl::MutexLock lock(&mu_);
  auto it = current_names_.find(path);
  if (it == current_names_.end()) return absl::NotFoundError(absl::StrCat("stat ", path));
  return static_cast<uint64_t>(it->second->current.size());
}

absl::Status FaultInjectionEnv::ReadFile(const std::string& path, std::string* contents) {
  absl::MutexLock lock(&mu_);
  auto it = current_names_.find(path);
  if (it == current_names_.end()) return absl::NotFoundError(absl::StrCat("open ", path));
  *contents = it->second->current;
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  absl::MutexLock lock(&mu_);
  if (dead_) return absl::OkStatus();
  auto it = current_names_.find(from);
  if (it == current_names_.end()) return absl::NotFoundError(absl::StrCat("rename ", from));
  if (Parent(from) != Parent(to)) return absl::InvalidArgumentError("rename across directories");
  DirOp op{Parent(to), to, it->second, from};
  ApplyDirOp(op, &current_names_);
  pending_dir_ops_.push_back(std::move(op));
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  absl::MutexLock lock(&mu_);
  if (dead_) return absl::OkStatus();
  if (!current_names_.contains(path)) return absl::NotFoundError(absl::StrCat("unlink ", path));
  DirOp op{Parent(path), path, nullptr, ""};
  ApplyDirOp(op, &current_names_);
  pending_dir_ops_.push_back(std::move(op));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  if (!dirs_.contains(dir)) return absl::NotFoundError(absl::StrCat("opendir ", dir));
  std::vector<std::string> names;
  for (const auto& [path, node] : current_names_) {
    if (Parent(path) == dir) names.push_back(path.substr(dir.size() + 1));
  }
  return names;
}

absl::Status FaultInjectionEnv::CreateDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  if (dead_) return absl::OkStatus();
  dirs_.insert(dir);
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  if (dead_) return absl::OkStatus();
  if (!dirs_.contains(dir)) return absl::NotFoundError(absl::StrCat("open ", dir));
  if (fail_syncs_) return absl::InternalError("injected directory fsync error");
  if (SyncCrashesLocked()) return absl::OkStatus();
  std::vector<DirOp> rest;
  for (DirOp& op : pending_dir_ops_) {
    if (op.dir == dir) {
      ApplyDirOp(op, &durable_names_);
    } else {
      rest.push_back(std::move(op));
    }
  }
  pending_dir_ops_ = std::move(rest);
  ++dir_syncs_;
  return absl::OkStatus();
}

bool FaultInjectionEnv::FileExists(const std::string& path) {
  absl::MutexLock lock(&mu_);
  return current_names_.contains(path) || dirs_.contains(path);
}

void FaultInjectionEnv::SimulateCrash(CrashMode mode) {
  absl::MutexLock lock(&mu_);
  CrashLocked(mode);
}

void FaultInjectionEnv::ScheduleCrash(uint64_t syncs_from_now, CrashMode mode) {
  absl::MutexLock lock(&mu_);
  crash_countdown_ = syncs_from_now;
  scheduled_mode_ = mode;
}

bool FaultInjectionEnv::crashed() const {
  absl::MutexLock lock(&mu_);
  return dead_;
}

void FaultInjectionEnv::Restart() {
  absl::MutexLock lock(&mu_);
  dead_ = false;
  crash_countdown_ = 0;
}

bool FaultInjectionEnv::SyncCrashesLocked() {
  if (crash_countdown_ == 0 || --crash_countdown_ > 0) return false;
  CrashLocked(scheduled_mode_);
  dead_ = true;
  return true;
}

void FaultInjectionEnv::CrashLocked(CrashMode mode) {
  const bool torn = mode == CrashMode::kTornWrites;
  // Directory changes: a prefix survives, per directory (a journaling file system commits them in
  // order).
  std::map<std::string, size_t> kept_ops;  // dir -> how many of its pending ops survive
  std::map<std::string, size_t> dir_op_count;
  for (const DirOp& op : pending_dir_ops_) ++dir_op_count[op.dir];
  for (const auto& [dir, count] : dir_op_count) {
    kept_ops[dir] = torn ? std::uniform_int_distribution<size_t>(0, count)(rng_) : 0;
  }
  for (const DirOp& op : pending_dir_ops_) {
    size_t& left = kept_ops[op.dir];
    if (left == 0) continue;
    --left;
    ApplyDirOp(op, &durable_names_);
  }
  pending_dir_ops_.clear();

  // File contents: every node still reachable keeps its durable bytes plus, when torn, a prefix of
  // its pending operations measured in bytes (a resize counts as one unit).
  std::set<Node*> done;
  for (auto& [path, node] : durable_names_) {
    if (!done.insert(node.get()).second) continue;
    if (torn && !node->pending.empty()) {
      uint64_t units = 0;
      for (const Node::Op& op : node->pending) units += op.is_write ? op.data.size() : 1;
      uint64_t keep = std::uniform_int_distribution<uint64_t>(0, units)(rng_);
      for (const Node::Op& op : node->pending) {
        if (keep == 0) break;
        uint64_t cost = op.is_write ? op.data.size() : 1;
        uint64_t take = std::min(keep, cost);
        Node::Apply(op, &node->durable, op.is_write ? take : 0);
        keep -= take;
      }
    }
    node->pending.clear();
    node->current = node->durable;
  }
  current_names_ = durable_names_;
  ++generation_;
}

absl::Status FaultInjectionEnv::CorruptByte(const std::string& path, uint64_t offset,
                                            uint8_t mask) {
  absl::MutexLock lock(&mu_);
  auto it = current_names_.find(path);
  if (it == current_names_.end()) return absl::NotFoundError(path);
  Node& node = *it->second;
  if (offset >= node.current.size()) return absl::OutOfRangeError("offset past end of file");
  node.current[offset] = static_cast<char>(node.current[offset] ^ mask);
  if (offset < node.durable.size()) {
    node.durable[offset] = static_cast<char>(node.durable[offset] ^ mask);
  }
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::OverwriteDurably(const std::string& path, uint64_t offset,
                                                 std::string_view data) {
  absl::MutexLock lock(&mu_);
  auto it = current_names_.find(path);
  if (it == current_names_.end()) return absl::NotFoundError(path);
  Node& node = *it->second;
  if (offset + data.size() > node.current.size() || offset + data.size() > node.durable.size()) {
    return absl::OutOfRangeError("overwrite past end of file");
  }
  node.current.replace(offset, data.size(), data);
  node.durable.replace(offset, data.size(), data);
  return absl::OkStatus();
}

void FaultInjectionEnv::set_fail_writes(bool fail) {
  absl::MutexLock lock(&mu_);
  fail_writes_ = fail;
}

void FaultInjectionEnv::set_fail_syncs(bool fail) {
  absl::MutexLock lock(&mu_);
  fail_syncs_ = fail;
}

uint64_t FaultInjectionEnv::file_sync_count() const {
  absl::MutexLock lock(&mu_);
  return file_syncs_;
}

uint64_t FaultInjectionEnv::dir_sync_count() const {
  absl::MutexLock lock(&mu_);
  return dir_syncs_;
}

uint64_t FaultInjectionEnv::UnsyncedBytes(const std::string& path) const {
  absl::MutexLock lock(&mu_);
  auto it = current_names_.find(path);
  if (it == current_names_.end()) return 0;
  uint64_t n = 0;
  for (const Node::Op& op : it->second->pending) n += op.is_write ? op.data.size() : 0;
  return n;
}

}  // namespace cairn::base
