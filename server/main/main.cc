// cairn: the member binary. Parses etcd-named flags, opens the data dir, serves clients, and
// shuts down cleanly on SIGTERM or SIGINT (in-flight writes finish; nothing acknowledged is lost).
#include <pthread.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include "absl/synchronization/mutex.h"
#include "server/api/client_server.h"
#include "server/api/corrupt_check.h"
#include "server/api/metrics_text.h"
#include "server/base/logging.h"
#include "server/main/flags.h"
#include "server/main/restore.h"

#ifndef CAIRN_VERSION
#define CAIRN_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  using namespace cairn;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "snapshot") {
    absl::Status st = main::RunSnapshotCommand({args.begin() + 1, args.end()});
    if (!st.ok()) {
      absl::string_view m = st.message();
      std::fprintf(stderr, "cairn snapshot: %.*s\n", static_cast<int>(m.size()), m.data());
      return 1;
    }
    std::printf("restored snapshot into a new data dir\n");
    return 0;
  }
  auto flags = main::ParseFlags(args);
  if (!flags.ok()) {
    absl::string_view m = flags.status().message();
    std::fprintf(stderr, "cairn: %.*s\nRun 'cairn --help' for the list of flags.\n",
                 static_cast<int>(m.size()), m.data());
    return 2;
  }
  if (flags->help) {
    std::cout << main::Usage();
    return 0;
  }
  if (flags->version) {
    std::cout << "cairn Version: " << CAIRN_VERSION << "\nAPI version: 3.5 (etcd v3)\n";
    return 0;
  }
#ifdef NDEBUG
  // Debian's abseil is built with Mutex deadlock detection on, and gRPC's locks are absl Mutexes:
  // the cycle graph cost about 2.5% of a loaded member's CPU (perf). Builds without NDEBUG keep
  // it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  base::LogLevel level;
  base::ParseLogLevel(flags->log_level, &level);
  base::SetLogLevel(level);
  base::LogFormat format;
  base::ParseLogFormat(flags->log_format, &format);
  base::SetLogFormat(format);
  CAIRN_LOG(kInfo, "main") << "starting cairn " << CAIRN_VERSION
                           << " (etcd v3 API 3.5): name=" << flags->server.name << " data-dir="
                           << (flags->server.data_dir.empty() ? flags->server.name + ".cairn"
                                                              : flags->server.data_dir);

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // A member removed from the cluster shuts down like one told to stop (etcd exits too): the
  // main thread's wait below ends as on SIGTERM.
  flags->server.on_removed = [] { kill(getpid(), SIGTERM); };
  auto server = etcdserver::Server::Open(flags->server);
  if (!server.ok()) {
    // The member's errors name the file (data dir, WAL, database) or the flag at fault.
    CAIRN_LOG(kError, "main") << "cannot start: " << server.status().message();
    return 1;
  }
  // As etcd: serve clients once this member's attributes (name, client URLs) are published
  // through the log, which also means a leader exists. A stop signal still ends the wait.
  while (!(*server)->AttributesPublished()) {
    timespec wait{0, 50 * 1000 * 1000};
    int pending = sigtimedwait(&stop_signals, nullptr, &wait);
    if (pending == SIGTERM || pending == SIGINT) {
      CAIRN_LOG(kInfo, "main") << "received signal " << pending << " before serving, shutting down";
      (*server)->Stop();
      return 0;
    }
  }
  if (flags->initial_corrupt_check) {
    absl::Status st = api::CorruptChecker::InitialCheck(server->get());
    if (!st.ok()) {
      CAIRN_LOG(kError, "main") << "cannot start: " << st;
      (*server)->Stop();
      return 1;
    }
  }
  api::ClientServer clients(server->get());
  // As etcd: given HTTP-only URLs, the client URLs serve gRPC only.
  clients.set_http_on_client_urls(flags->listen_client_http_urls.empty());
  etcdserver::Server* member = server->get();
  clients.set_metrics_renderer(
      [member, &clients] { return api::MetricsText(member, &clients.gate()); });
  clients.set_alarm_source([member] {
    std::vector<std::string> names;  // /health: "ALARM NOSPACE", as etcd
    for (const auto& a : member->Alarms()) names.push_back(etcdserverpb::AlarmType_Name(a.alarm()));
    return names;
  });
  auto bound = clients.Start(flags->listen_client_urls);
  if (!bound.ok()) {
    CAIRN_LOG(kError, "main") << "cannot serve clients (--listen-client-urls): "
                              << bound.status().message();
    return 1;
  }
  for (const auto& [urls, metrics_only] : {std::pair{&flags->listen_client_http_urls, false},
                                           std::pair{&flags->listen_metrics_urls, true}}) {
    if (urls->empty()) continue;
    if (auto http = clients.ServeHttpOnly(*urls, metrics_only); !http.ok()) {
      CAIRN_LOG(kError, "main") << "cannot serve HTTP: " << http.status();
      return 1;
    }
  }
  CAIRN_LOG(kInfo, "main") << "ready to serve client requests";
  api::CorruptChecker corrupt_checker(server->get());
  if (flags->corrupt_check_time_ms > 0) corrupt_checker.Start(flags->corrupt_check_time_ms);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  // One line at a clean stop: the member's "stopped cleanly" (Server::Stop).
  CAIRN_LOG(kDebug, "main") << "received signal " << sig << ", shutting down";
  // Open watch streams are canceled at the deadline; unary calls finish well before it.
  corrupt_checker.Stop();
  clients.Shutdown(/*deadline_ms=*/2000);
  (*server)->Stop();
  return 0;
}
