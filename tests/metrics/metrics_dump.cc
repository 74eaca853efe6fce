// cairn_metrics_dump BEFORE AFTER: opens a real member in a temporary data dir with its client
// listener on an ephemeral loopback port, writes /metrics' text to BEFORE, then over gRPC makes
// 20 puts, a range, one failing put (empty key) and one watch, and writes the text to AFTER.
// test_metrics_parse.py parses both with Debian's prometheus_client and checks what moved.
// Exit status 0 on success; 1 with a message on stderr otherwise.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/api/client_server.h"
#include "server/api/metrics_text.h"
#include "server/etcdserver/server.h"

namespace {

int Fail(const std::string& why) {
  std::fprintf(stderr, "cairn_metrics_dump: %s\n", why.c_str());
  return 1;
}

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return ctx;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

int Run(const std::string& dir, const std::string& before, const std::string& after) {
  using namespace cairn;
  etcdserver::ServerConfig config;
  config.data_dir = dir;
  auto server = etcdserver::Server::Open(config);
  if (!server.ok()) return Fail(server.status().ToString());
  api::ClientServer clients(server->get());
  auto bound = clients.Start({"http://127.0.0.1:0"});
  if (!bound.ok()) return Fail(bound.status().ToString());
  if (!WriteFile(before, api::MetricsText(server->get(), &clients.gate()))) return Fail(before);

  auto channel = grpc::CreateChannel((*bound)[0], grpc::InsecureChannelCredentials());
  auto kv = etcdserverpb::KV::NewStub(channel);
  for (int i = 0; i < 20; ++i) {
    etcdserverpb::PutRequest put;
    put.set_key("metrics/" + std::to_string(i));
    put.set_value("v");
    etcdserverpb::PutResponse resp;
    grpc::Status st = kv->Put(Ctx().get(), put, &resp);
    if (!st.ok()) return Fail("put: " + st.error_message());
  }
  etcdserverpb::RangeRequest range;
  range.set_key("metrics/");
  range.set_range_end("metrics0");
  etcdserverpb::RangeResponse range_resp;
  if (!kv->Range(Ctx().get(), range, &range_resp).ok()) return Fail("range");
  etcdserverpb::PutRequest empty;
  etcdserverpb::PutResponse put_resp;
  if (kv->Put(Ctx().get(), empty, &put_resp).error_code() != grpc::INVALID_ARGUMENT) {
    return Fail("an empty key was not refused");
  }

  auto watch = etcdserverpb::Watch::NewStub(channel);
  auto watch_ctx = Ctx();
  auto stream = watch->Watch(watch_ctx.get());
  etcdserverpb::WatchRequest create;
  create.mutable_create_request()->set_key("metrics/");
  etcdserverpb::WatchResponse created;
  if (!stream->Write(create) || !stream->Read(&created) || !created.created()) {
    return Fail("watch not created");
  }
  bool written = WriteFile(after, api::MetricsText(server->get(), &clients.gate()));
  watch_ctx->TryCancel();
  (void)stream->Finish();
  clients.Shutdown(/*deadline_ms=*/1000);
  (*server)->Stop();
  return written ? 0 : Fail(after);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return Fail("usage: cairn_metrics_dump BEFORE AFTER");
  char tmpl[] = "/tmp/cairn-metrics-dump-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Fail("mkdtemp");
  int rc = Run(tmpl, argv[1], argv[2]);
  std::filesystem::remove_all(tmpl);
  return rc;
}
