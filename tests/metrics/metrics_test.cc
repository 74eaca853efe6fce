// The metrics registry and its Prometheus text (format 0.0.4): counters, gauges, callback gauges,
// collectors, histograms (cumulative _bucket{le}, +Inf, _sum, _count), escaping, value format;
// and the text a real member renders (api/metrics_text.h).
#include "server/base/metrics.h"

#include <sys/resource.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/api/gate.h"
#include "server/api/metrics_text.h"
#include "server/etcdserver/server.h"
#include "server/etcdserver/server_metrics.h"

namespace cairn::base {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTextTest, CounterAndGaugeWithHelpAndType) {
  MetricsRegistry r;
  Counter* c = r.AddCounter("a_total", "Counts a.");
  Gauge* g = r.AddGauge("b", "Gauge b.", {{"x", "1"}});
  c->Inc();
  c->Inc(4);
  g->Set(2.5);
  g->Add(-1);
  EXPECT_EQ(r.RenderPrometheusText(),
            "# HELP a_total Counts a.\n"
            "# TYPE a_total counter\n"
            "a_total 5\n"
            "# HELP b Gauge b.\n"
            "# TYPE b gauge\n"
            "b{x=\"1\"} 1.5\n");
}

TEST(MetricsTextTest, SeriesOfOneNameShareOneFamily) {
  MetricsRegistry r;
  r.AddCounter("req_total", "Requests.", {{"code", "OK"}})->Inc(2);
  r.AddCounter("req_total", "ignored", {{"code", "NotFound"}})->Inc();
  EXPECT_EQ(r.RenderPrometheusText(),
            "# HELP req_total Requests.\n"
            "# TYPE req_total counter\n"
            "req_total{code=\"OK\"} 2\n"
            "req_total{code=\"NotFound\"} 1\n");
}

TEST(MetricsTextTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry r;
  Histogram* h = r.AddHistogram("d_seconds", "D.", ExponentialBuckets(0.001, 2, 3), {{"k", "v"}});
  h->Observe(0.0005);  // <= 0.001
  h->Observe(0.001);   // bounds are inclusive
  h->Observe(0.003);   // <= 0.004
  h->Observe(7);       // +Inf only
  EXPECT_EQ(r.RenderPrometheusText(),
            "# HELP d_seconds D.\n"
            "# TYPE d_seconds histogram\n"
            "d_seconds_bucket{k=\"v\",le=\"0.001\"} 2\n"
            "d_seconds_bucket{k=\"v\",le=\"0.002\"} 2\n"
            "d_seconds_bucket{k=\"v\",le=\"0.004\"} 3\n"
            "d_seconds_bucket{k=\"v\",le=\"+Inf\"} 4\n"
            "d_seconds_sum{k=\"v\"} 7.0045\n"
            "d_seconds_count{k=\"v\"} 4\n");
}

TEST(MetricsTextTest, EtcdBucketsRenderAsShortDecimals) {
  std::vector<double> fsync = ExponentialBuckets(0.001, 2, 14);
  ASSERT_EQ(fsync.size(), 14u);
  EXPECT_EQ(FormatMetricValue(fsync.front()), "0.001");
  EXPECT_EQ(FormatMetricValue(fsync.back()), "8.192");
  std::vector<double> rtt = ExponentialBuckets(0.0001, 2, 16);
  EXPECT_EQ(FormatMetricValue(rtt[0]), "0.0001");
  EXPECT_EQ(FormatMetricValue(rtt[1]), "0.0002");
  EXPECT_EQ(FormatMetricValue(rtt.back()), "3.2768");
}

TEST(MetricsTextTest, EscapesLabelValuesAndHelp) {
  MetricsRegistry r;
  r.AddGauge("e", "line1\nback\\slash \"quoted\"", {{"v", "a\"b\\c\nd"}})->Set(1);
  EXPECT_EQ(r.RenderPrometheusText(),
            "# HELP e line1\\nback\\\\slash \"quoted\"\n"
            "# TYPE e gauge\n"
            "e{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsTextTest, SpecialValues) {
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatMetricValue(12345678901234.0), "12345678901234");
  EXPECT_EQ(FormatMetricValue(0), "0");
}

TEST(MetricsTextTest, CallbacksAndCollectorsAreReadAtRenderTime) {
  MetricsRegistry r;
  double level = 1;
  r.AddCallbackGauge("level", "L.", {}, [&] { return level; });
  r.AddCallbackCounter("ticks_total", "T.", {}, [&] { return level * 10; });
  r.AddCollector("per_method_total", "P.", MetricsRegistry::Type::kCounter, [&](auto* out) {
    out->push_back({{{"m", "Put"}}, level});
    out->push_back({{{"m", "Range"}}, 2 * level});
  });
  level = 3;
  std::string text = r.RenderPrometheusText();
  EXPECT_THAT(text, HasSubstr("level 3\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE ticks_total counter\nticks_total 30\n"));
  EXPECT_THAT(text, HasSubstr("per_method_total{m=\"Put\"} 3\nper_method_total{m=\"Range\"} 6\n"));
}

TEST(MetricsTextTest, ConcurrentRecordingLosesNothing) {
  MetricsRegistry r;
  Counter* c = r.AddCounter("c_total", "C.");
  Histogram* h = r.AddHistogram("h", "H.", {1, 2});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c->Inc();
        h->Observe(1.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->value(), 40000u);
  Histogram::Snapshot s = h->Read();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{0, 40000, 40000}));
  EXPECT_DOUBLE_EQ(s.sum, 60000);
}

// Spins until this process has used at least 50 ms of user CPU (by getrusage), so that
// /proc/self/stat's clock ticks are surely nonzero; bounded by a wall-clock deadline.
void BurnCpu() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  volatile uint64_t sink = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    if (ru.ru_utime.tv_sec > 0 || ru.ru_utime.tv_usec >= 50000) return;
    for (int i = 0; i < 100000; ++i) sink = sink + i;
  }
}

TEST(MetricsTextTest, ProcessMetricsReadProcSelf) {
  MetricsRegistry r;
  RegisterProcessMetrics(&r);
  BurnCpu();
  std::string text = r.RenderPrometheusText();
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_open_fds", "process_max_fds", "process_start_time_seconds"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + name)) << name;
    EXPECT_THAT(text, Not(HasSubstr(std::string(name) + " 0\n"))) << name;
  }
}

// Peer round trips: a heartbeat to a peer until that peer's response, one outstanding per peer;
// a response nobody waits for is not counted.
TEST(HeartbeatRttTest, TimesHeartbeatsToTheirResponsesPerPeer) {
  etcdserver::ServerMetrics metrics;
  etcdserver::HeartbeatRtt rtt(&metrics);
  raft::Message hb;
  hb.type = raft::MessageType::kHeartbeat;
  hb.from = 1;
  hb.to = 0xab;
  raft::Message app = hb;
  app.type = raft::MessageType::kApp;
  rtt.OnSend({hb, hb, app});  // the second heartbeat while one is outstanding: not restarted
  raft::Message resp;
  resp.type = raft::MessageType::kHeartbeatResp;
  resp.from = 0xab;
  resp.to = 1;
  rtt.OnReceive(resp);
  rtt.OnReceive(resp);  // nothing outstanding any more
  raft::Message stranger = resp;
  stranger.from = 0xcd;  // never sent a heartbeat
  rtt.OnReceive(stranger);
  EXPECT_EQ(metrics.PeerRoundTrip(0xab)->Read().count, 1u);
  std::string text = metrics.registry.RenderPrometheusText();
  EXPECT_THAT(text, HasSubstr("# TYPE etcd_network_peer_round_trip_time_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("etcd_network_peer_round_trip_time_seconds_count{To=\"ab\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("{To=\"ab\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("{To=\"ab\",le=\"0.0001\"}"));  // etcd's 16 buckets from 0.0001
  EXPECT_THAT(text, Not(HasSubstr("To=\"cd\"")));
}

// A real member renders etcd's names; the gate's counters appear by method and code.
TEST(MemberMetricsTest, RendersEtcdNamesAndGateCounters) {
  char tmpl[] = "/tmp/cairn-metrics-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  {
    etcdserver::ServerConfig config;
    config.data_dir = dir;
    auto server = etcdserver::Server::Open(config);
    ASSERT_TRUE(server.ok()) << server.status();
    api::RequestGate gate;
    api::RequestGate::Done done = [](absl::Status) {};
    ASSERT_TRUE(gate.Admit(api::Method::kPut, &done));
    done(absl::InvalidArgumentError("etcdserver: key is not provided"));
    std::string text = api::MetricsText(server->get(), &gate);
    for (const char* family :
         {"etcd_server_has_leader", "etcd_server_is_leader",
          "etcd_server_leader_changes_seen_total", "etcd_server_proposals_committed_total",
          "etcd_server_proposals_applied_total", "etcd_server_proposals_pending",
          "etcd_server_proposals_failed_total", "etcd_disk_wal_fsync_duration_seconds",
          "etcd_disk_backend_commit_duration_seconds", "etcd_mvcc_db_total_size_in_bytes",
          "etcd_debugging_mvcc_keys_total", "etcd_mvcc_watcher_total", "process_open_fds",
          "grpc_server_started_total", "grpc_server_handled_total"}) {
      EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + family + " ")) << family;
    }
    EXPECT_THAT(text, HasSubstr("grpc_server_handled_total{grpc_code=\"InvalidArgument\","
                                "grpc_method=\"Put\",grpc_service=\"etcdserverpb.KV\","
                                "grpc_type=\"unary\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("le=\"8.192\""));
    (*server)->Stop();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::base
