// Structured, leveled logging: one line per record, in one of two formats:
//   text (default):  time=... level=info component=main msg=ready to serve client requests
//   json:            {"level":"info","ts":"...","caller":"main/main.cc:82","component":"main",
//                     "msg":"ready to serve client requests"}   (the fields of etcd's zap logger)
// The `cairn` binary sets the level from --log-level (default info, as etcd) and the format from
// --log-format; a library user's default is level warn, format text.
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
enum class LogFormat { kText = 0, kJson = 1 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warn", "error"; returns false on anything else.
bool ParseLogLevel(std::string_view text, LogLevel* level);
void SetLogFormat(LogFormat format);
// Parses "text", "json"; returns false on anything else.
bool ParseLogFormat(std::string_view text, LogFormat* format);

class LogRecord {
 public:
  LogRecord(LogLevel level, std::string_view component, const char* file = "", int line = 0);
  ~LogRecord();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::string_view component_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

// One record as `format` writes it (without the newline); `ts` is RFC 3339 UTC. For tests.
std::string FormatLogRecord(LogFormat format, LogLevel level, std::string_view ts,
                            std::string_view component, std::string_view caller,
                            std::string_view msg);

}  // namespace cairn::base

#define CAIRN_LOG(level, component)                                    \
  if (::cairn::base::LogLevel::level < ::cairn::base::GetLogLevel()) { \
  } else                                                               \
    ::cairn::base::LogRecord(::cairn::base::LogLevel::level, component, __FILE__, __LINE__).stream()
