#include "server/base/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/base/failpoint.h"

namespace cairn::base {
namespace {

absl::Status IoError(const char* op, const std::string& path, int err) {
  std::string message = absl::StrCat(op, " ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

// An error injected by a failpoint (failpoint.h), marked as such in the message.
absl::Status Injected(const char* op, const std::string& path, int err) {
  return absl::InternalError(
      absl::StrCat(op, " ", path, ": ", std::strerror(err), " (injected by CAIRN_FAILPOINTS)"));
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override { ::close(fd_); }

  absl::Status Append(std::string_view data) override {
    if (int err = FailpointErrno("write"); err != 0) return Injected("pwrite", path_, err);
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(position_));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("pwrite", path_, errno);
      }
      position_ += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    if (int err = FailpointErrno("fsync"); err != 0) return Injected("fdatasync", path_, err);
    if (::fdatasync(fd_) != 0) return IoError("fdatasync", path_, errno);
    return absl::OkStatus();
  }

  absl::Status Preallocate(uint64_t size) override {
    if (int err = FailpointErrno("preallocate"); err != 0)
      return Injected("posix_fallocate", path_, err);
    // Mode 0 allocates blocks and extends the size; the new range reads as zeros. Unlike
    // FALLOC_FL_KEEP_SIZE this keeps the size fixed while appending, so fdatasync suffices.
    int err = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
    if (err == EOPNOTSUPP || err == EINVAL) {
      // File systems without fallocate (e.g. some tmpfs setups): extend by ftruncate instead,
      // which also reads back as zeros.
      struct stat st;
      if (::fstat(fd_, &st) != 0) return IoError("fstat", path_, errno);
      if (static_cast<uint64_t>(st.st_size) >= size) return absl::OkStatus();
      if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
        return IoError("ftruncate", path_, errno);
      return absl::OkStatus();
    }
    if (err != 0) return IoError("posix_fallocate", path_, err);
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return IoError("ftruncate", path_, errno);
    position_ = size;
    return absl::OkStatus();
  }

  uint64_t position() const override { return position_; }

 private:
  const std::string path_;
  const int fd_;
  uint64_t position_ = 0;
};

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  absl::Status Read(size_t n, std::string* out) override {
    out->resize(n);
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::read(fd_, out->data() + done, n - done);
      if (r < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        out->clear();
        return IoError("read", path_, err);
      }
      if (r == 0) break;  // end of file
      done += static_cast<size_t>(r);
    }
    out->resize(done);
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixEnv final : public Env {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return IoError("open", path, errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> ReopenWritableFile(
      const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return IoError("open", path, errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  absl::StatusOr<std::unique_ptr<SequentialFile>> NewSequentialFile(
      const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("open", path, errno);
    return std::make_unique<PosixSequentialFile>(path, fd);
  }

  absl::StatusOr<uint64_t> GetFileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return IoError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  absl::Status ReadFile(const std::string& path, std::string* contents) override {
    contents->clear();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return IoError("fstat", path, err);
    }
    contents->resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < contents->size()) {
      ssize_t n =
          ::pread(fd, contents->data() + done, contents->size() - done, static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        return IoError("pread", path, err);
      }
      if (n == 0) break;  // the file shrank under us
      done += static_cast<size_t>(n);
    }
    contents->resize(done);
    ::close(fd);
    return absl::OkStatus();
  }

  absl::Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return IoError("rename", from, errno);
    return absl::OkStatus();
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return IoError("unlink", path, errno);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return IoError("opendir", dir, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    ::closedir(d);
    return names;
  }

  absl::Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return IoError("mkdir", dir, errno);
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    if (int err = FailpointErrno("dir_fsync"); err != 0) return Injected("fsync", dir, err);
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return IoError("open", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return IoError("fsync", dir, err);
    return absl::OkStatus();
  }

  bool FileExists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }
};

}  // namespace

absl::Status Env::CreateDirs(const std::string& dir) {
  // Every prefix ending before a '/', then `dir` itself; existing levels are skipped, so a parent
  // the process may not write to (e.g. "/tmp") is never created.
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string level = dir.substr(0, slash);
    if (!level.empty() && level.back() != '/' && !FileExists(level)) {
      if (absl::Status s = CreateDir(level); !s.ok()) return s;
    }
    if (slash == std::string::npos) return absl::OkStatus();
  }
}

Env* Env::Default() {
  static Env* env = new PosixEnv();
  return env;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string path(dir);
  if (path.back() != '/') path.push_back('/');
  path.append(name);
  return path;
}

}  // namespace cairn::base
