#include "server/base/logging.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>

namespace cairn::base {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

std::string NowRfc3339() {
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
      1000000;
  std::tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  char stamp[64];
  std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                tm_utc.tm_year + 1900, tm_utc.tm_mon + 1, tm_utc.tm_mday, tm_utc.tm_hour,
                tm_utc.tm_min, tm_utc.tm_sec, static_cast<long long>(micros));
  return stamp;
}

// "…/server/etcdserver/raft_driver.cc" -> "etcdserver/raft_driver.cc" (zap's short caller).
std::string_view ShortFile(std::string_view file) {
  if (file.substr(0, 7) == "server/") return file.substr(7);
  size_t at = file.rfind("/server/");  // not "etcdserver/"
  if (at != std::string_view::npos) return file.substr(at + 8);
  size_t slash = file.rfind('/');
  return slash == std::string_view::npos ? file : file.substr(slash + 1);
}

void AppendJsonString(std::string* out, std::string_view s) {
  *out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          *out += buf;
        } else {
          *out += c;
        }
    }
  }
  *out += '"';
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

bool ParseLogLevel(std::string_view text, LogLevel* level) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (text == LevelName(l)) {
      *level = l;
      return true;
    }
  }
  return false;
}

void SetLogFormat(LogFormat format) { g_format.store(static_cast<int>(format)); }

bool ParseLogFormat(std::string_view text, LogFormat* format) {
  if (text == "text") {
    *format = LogFormat::kText;
  } else if (text == "json") {
    *format = LogFormat::kJson;
  } else {
    return false;
  }
  return true;
}

std::string FormatLogRecord(LogFormat format, LogLevel level, std::string_view ts,
                            std::string_view component, std::string_view caller,
                            std::string_view msg) {
  std::string out;
  if (format == LogFormat::kJson) {
    out += "{\"level\":";
    AppendJsonString(&out, LevelName(level));
    out += ",\"ts\":";
    AppendJsonString(&out, ts);
    out += ",\"caller\":";
    AppendJsonString(&out, caller);
    out += ",\"component\":";
    AppendJsonString(&out, component);
    out += ",\"msg\":";
    AppendJsonString(&out, msg);
    out += '}';
    return out;
  }
  out += "time=";
  out += ts;
  out += " level=";
  out += LevelName(level);
  out += " component=";
  out += component;
  out += " msg=";
  out += msg;
  return out;
}

LogRecord::LogRecord(LogLevel level, std::string_view component, const char* file, int line)
    : level_(level), component_(component), file_(file), line_(line) {}

LogRecord::~LogRecord() {
  std::string caller(ShortFile(file_));
  if (line_ > 0) caller += ":" + std::to_string(line_);
  std::string record =
      FormatLogRecord(static_cast<LogFormat>(g_format.load(std::memory_order_relaxed)), level_,
                      NowRfc3339(), component_, caller, stream_.str());
  record += '\n';
  std::fwrite(record.data(), 1, record.size(), stderr);
}

}  // namespace cairn::base
