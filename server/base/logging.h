// Structured, leveled logging: one line per record, `time level component message key=value...`.
// Quiet by default (level kWarn); the `cairn` binary sets the level from --log-level.
//
//   CAIRN_LOG(kInfo, "mvcc") << "compacted" << " revision=" << rev;
//
// Thread-safe: each record is formatted privately and written with one fwrite.
#pragma once

#include <atomic>
#include <sstream>
#include <string_view>

namespace cairn::base {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warn", "error"; returns false on anything else.
bool ParseLogLevel(std::string_view text, LogLevel* level);

class LogRecord {
 public:
  LogRecord(LogLevel level, std::string_view component);
  ~LogRecord();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

}  // namespace cairn::base

#define CAIRN_LOG(level, component)                                    \
  if (::cairn::base::LogLevel::level < ::cairn::base::GetLogLevel()) { \
  } else                                                               \
    ::cairn::base::LogRecord(::cairn::base::LogLevel::level, component).stream()
