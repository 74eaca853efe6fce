// api::AuthenticatedCommonName: the verified client certificate's CN as a request handler sees
// it, on a gRPC server built with api::ClientListenerCredentials (the client URLs' credentials).
#include <filesystem>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/api/tls.h"
#include "server/transport/tls.h"
#include "tests/tls/tls_fixture.h"

namespace cairn::tls_test {
namespace {

// Range answers with one kv whose key is the caller's certificate CN ("<none>" without one).
class WhoAmI final : public etcdserverpb::KV::CallbackService {
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* /*request*/,
                                  etcdserverpb::RangeResponse* response) override {
    std::optional<std::string> cn = api::AuthenticatedCommonName(*ctx);
    response->add_kvs()->set_key(cn.value_or("<none>"));
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("cairn-tls-identity");
    ASSERT_TRUE(certs_.Generate(dir_).ok());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  // Starts the server on `url` with `tls`; returns its port.
  int Serve(const std::string& url, transport::TlsConfig tls) {
    if (server_) server_->Shutdown();
    server_.reset();
    etcdserver::ServerConfig config;
    config.data_dir = dir_ + "/data";
    config.client_tls = std::move(tls);
    auto creds = api::ClientListenerCredentials(config, {url});
    EXPECT_TRUE(creds.ok()) << creds.status();
    if (!creds.ok()) return 0;
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", creds->at(0), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    return port;
  }

  // The key of Range's answer, or the call's error.
  std::string Call(int port, std::shared_ptr<grpc::ChannelCredentials> creds) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), creds);
    auto stub = etcdserverpb::KV::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    etcdserverpb::RangeRequest request;
    etcdserverpb::RangeResponse response;
    grpc::Status st = stub->Range(&ctx, request, &response);
    if (!st.ok()) return "error: " + st.error_message();
    return response.kvs(0).key();
  }

  std::shared_ptr<grpc::ChannelCredentials> Tls(bool with_client_cert) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = ReadFileOrEmpty(certs_.Path("ca.pem"));
    if (with_client_cert) {
      o.pem_private_key = ReadFileOrEmpty(certs_.Path("client.key"));
      o.pem_cert_chain = ReadFileOrEmpty(certs_.Path("client.pem"));
    }
    return grpc::SslCredentials(o);
  }

  transport::TlsConfig ServerTls(bool client_cert_auth) {
    transport::TlsConfig tls;
    tls.cert_file = certs_.Path("server.pem");
    tls.key_file = certs_.Path("server.key");
    if (client_cert_auth) {
      tls.trusted_ca_file = certs_.Path("ca.pem");
      tls.client_cert_auth = true;
    }
    return tls;
  }

  std::string dir_;
  Certs certs_;
  WhoAmI service_;
  std::unique_ptr<grpc::Server> server_;
};

// The CN reaches the handler only from a verified client certificate.
TEST_F(IdentityTest, CommonNameReachesTheHandlerOnlyWhenVerified) {
  int port = Serve("https://127.0.0.1:0", ServerTls(/*client_cert_auth=*/true));
  ASSERT_GT(port, 0);
  EXPECT_EQ(Call(port, Tls(/*with_client_cert=*/true)), "client-user");
  // Without a trusted CA no certificate is asked for.
  port = Serve("https://127.0.0.1:0", ServerTls(/*client_cert_auth=*/false));
  ASSERT_GT(port, 0);
  EXPECT_EQ(Call(port, Tls(/*with_client_cert=*/true)), "<none>");
  EXPECT_EQ(Call(port, Tls(/*with_client_cert=*/false)), "<none>");
  port = Serve("http://127.0.0.1:0", {});
  ASSERT_GT(port, 0);
  EXPECT_EQ(Call(port, grpc::InsecureChannelCredentials()), "<none>");
}

// --peer-cert-allowed-cn on a listener built the way the peer transport builds its own.
TEST_F(IdentityTest, CommonNameOutsideTheAllowedOneIsRefused) {
  transport::TlsConfig tls = ServerTls(/*client_cert_auth=*/true);
  tls.allowed_cn = "client-user";
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", transport::ServerCredentialsFor("https://x:1", tls),
                           &port);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  ASSERT_GT(port, 0);
  EXPECT_EQ(Call(port, Tls(/*with_client_cert=*/true)), "client-user");
  server_->Shutdown();
  server_.reset();
  tls.allowed_cn = "peer";
  grpc::ServerBuilder builder2;
  builder2.AddListeningPort("127.0.0.1:0", transport::ServerCredentialsFor("https://x:1", tls),
                            &port);
  builder2.RegisterService(&service_);
  server_ = builder2.BuildAndStart();
  ASSERT_GT(port, 0);
  std::string answer = Call(port, Tls(/*with_client_cert=*/true));
  EXPECT_EQ(answer.rfind("error: ", 0), 0u) << answer;
}

TEST_F(IdentityTest, HttpsWithoutACertificateIsAnError) {
  etcdserver::ServerConfig config;
  config.data_dir = dir_ + "/data";
  auto creds = api::ClientListenerCredentials(config, {"https://127.0.0.1:0"});
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("--cert-file"), std::string::npos) << creds.status();
  config.client_tls = ServerTls(false);
  config.client_tls.key_file = certs_.Path("client.key");  // not the certificate's key
  creds = api::ClientListenerCredentials(config, {"https://127.0.0.1:0"});
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("does not match"), std::string::npos) << creds.status();
}

}  // namespace
}  // namespace cairn::tls_test
