#include "server/auth/token.h"

#include <sys/random.h>

#include "server/base/check.h"

namespace cairn::auth {

std::string NewSimpleToken(uint64_t index) {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    CAIRN_CHECK(n > 0 || errno == EINTR) << "getrandom failed";
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string token;
  // 52 letters: the modulo bias (256 % 52) does not matter for 16 characters of ~5.7 bits each.
  static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (unsigned char b : bytes) token.push_back(kLetters[b % 52]);
  token.push_back('.');
  token += std::to_string(index);
  return token;
}

void SimpleTokens::Assign(const std::string& token, const std::string& user) {
  int64_t now = clock_->NowMs();
  absl::MutexLock l(&mu_);
  SweepLocked(now);
  tokens_[token] = Entry{user, now + ttl_ms_};
}

std::optional<std::string> SimpleTokens::Lookup(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return std::nullopt;
  int64_t now = clock_->NowMs();
  absl::MutexLock l(&mu_);
  auto it = tokens_.find(token);
  if (it == tokens_.end()) return std::nullopt;
  if (it->second.expires_ms <= now) {
    tokens_.erase(it);
    return std::nullopt;
  }
  it->second.expires_ms = now + ttl_ms_;
  return it->second.user;
}

void SimpleTokens::InvalidateUser(std::string_view user) {
  absl::MutexLock l(&mu_);
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    it = it->second.user == user ? tokens_.erase(it) : std::next(it);
  }
}

void SimpleTokens::Clear() {
  absl::MutexLock l(&mu_);
  tokens_.clear();
}

size_t SimpleTokens::size() const {
  absl::MutexLock l(&mu_);
  return tokens_.size();
}

void SimpleTokens::SweepLocked(int64_t now) {
  // Expired tokens are dropped at most once per TTL, so the table holds at most the tokens
  // issued in two TTLs however many clients authenticate.
  if (now < next_sweep_ms_) return;
  next_sweep_ms_ = now + ttl_ms_;
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    it = it->second.expires_ms <= now ? tokens_.erase(it) : std::next(it);
  }
}

}  // namespace cairn::auth
