// Tests of server/transport: snapshot streams (chunks, checksums, the Env, aborts, limits).
#include "tests/transport/transport_test_util.h"

namespace cairn::transport::test {
namespace {

TEST(TransportTest, SnapshotIsStreamedInChunksAndVerified) {
  TransportOptions options;
  options.snapshot_chunk_bytes = 256 * 1024;
  auto a = StartMember(1, options);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  const std::string data = PseudoRandomBytes(5 * 1024 * 1024 + 123, 7);
  a->handler.SetSnapshot(data, 100 * 1000);  // pieces do not line up with chunks
  a->transport->Send({Snap(1, 2, 7, 42)});

  ASSERT_TRUE(WaitFor([&] { return !a->handler.snapshot_sent().empty(); }));
  EXPECT_EQ(a->handler.snapshot_sent(), (std::vector<std::pair<uint64_t, bool>>{{2, true}}));
  ASSERT_TRUE(WaitFor([&] { return b->handler.snapshots().size() == 1; }));
  auto [message, path] = b->handler.snapshots()[0];
  EXPECT_EQ(path, b->snap_dir + "/0000000000000007-000000000000002a.snap");
  EXPECT_EQ(message.type, raft::MessageType::kSnap);
  EXPECT_EQ(message.from, 1u);
  ASSERT_TRUE(message.snapshot.has_value());
  EXPECT_EQ(message.snapshot->metadata, Snap(1, 2, 7, 42).snapshot->metadata);
  EXPECT_TRUE(message.snapshot->data.empty());
  EXPECT_TRUE(ReadFile(path) == data);
  EXPECT_FALSE(HasFileWithSuffix(b->snap_dir, ".tmp"));
  EXPECT_EQ(a->transport->stats().snapshots_sent, 1u);
  EXPECT_EQ(b->transport->stats().snapshots_received, 1u);
  // Raft messages are not held up by the snapshot stream.
  SendApps(a.get(), 2, 0, 5);
  EXPECT_TRUE(WaitFor([&] { return b->handler.message_count() == 5; }));
}

// The receiver does its file work through TransportOptions::env: the snapshot lands in that Env,
// synced under its final name (it survives a crash that drops every unsynced byte), and nothing
// is written to the real disk.
TEST(TransportTest, ReceivedSnapshotIsWrittenAndSyncedThroughTheEnv) {
  base::FaultInjectionEnv env(1);
  auto a = StartMember(1);
  TransportOptions options;
  options.env = &env;
  auto b = StartMember(2, options);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  const std::string data = PseudoRandomBytes(300 * 1000, 3);
  a->handler.SetSnapshot(data, 64 * 1024);
  a->transport->Send({Snap(1, 2, 7, 42)});
  ASSERT_TRUE(WaitFor([&] { return b->handler.snapshots().size() == 1; }));
  const std::string path = b->handler.snapshots()[0].second;
  EXPECT_EQ(path, b->snap_dir + "/0000000000000007-000000000000002a.snap");
  EXPECT_FALSE(fs::exists(path));  // not on the real disk
  EXPECT_EQ(env.UnsyncedBytes(path), 0u);
  env.SimulateCrash(base::FaultInjectionEnv::CrashMode::kDropUnsynced);
  std::string contents;
  ASSERT_TRUE(env.ReadFile(path, &contents).ok());
  EXPECT_TRUE(contents == data);
  absl::StatusOr<std::vector<std::string>> names = env.ListDir(b->snap_dir);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, std::vector<std::string>{"0000000000000007-000000000000002a.snap"});
}

TEST(TransportTest, AbortedSnapshotLeavesNothingBehind) {
  TransportOptions options;
  options.snapshot_chunk_bytes = 64 * 1024;
  auto a = StartMember(1, options);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  // The dump fails after 1 MB has been streamed.
  a->handler.SetSnapshot(PseudoRandomBytes(3 * 1024 * 1024, 9), 128 * 1024, 8);
  a->transport->Send({Snap(1, 2, 2, 10)});
  ASSERT_TRUE(WaitFor([&] { return !a->handler.snapshot_sent().empty(); }));
  EXPECT_EQ(a->handler.snapshot_sent(), (std::vector<std::pair<uint64_t, bool>>{{2, false}}));
  // The receiver sees the stream break and removes its partial file.
  EXPECT_TRUE(WaitFor([&] {
    return !HasFileWithSuffix(b->snap_dir, ".tmp") && !HasFileWithSuffix(b->snap_dir, ".snap");
  }));
  EXPECT_TRUE(b->handler.snapshots().empty());
  EXPECT_EQ(a->transport->stats().snapshots_sent, 0u);
  EXPECT_EQ(b->transport->stats().snapshots_received, 0u);

  // A later complete send goes through.
  a->handler.SetSnapshot(PseudoRandomBytes(300 * 1024, 10), 50 * 1024);
  a->transport->Send({Snap(1, 2, 2, 11)});
  ASSERT_TRUE(WaitFor([&] { return b->handler.snapshots().size() == 1; }));
  EXPECT_TRUE(WaitFor([&] { return a->handler.snapshot_sent().size() == 2; }));
  EXPECT_EQ(a->handler.snapshot_sent()[1], std::make_pair(uint64_t{2}, true));
}

TEST(TransportTest, SnapshotWithBadChecksumIsRefused) {
  auto b = StartMember(2);
  ASSERT_TRUE(b);
  RawPeer raw(b->port);
  grpc::ClientContext context;
  cairnpb::SnapshotAck ack;
  auto writer = raw.stub()->Snapshot(&context, &ack);
  raft::Message m = Snap(1, 2, 4, 20);
  m.snapshot->data.clear();
  cairnpb::SnapshotChunk first;
  first.mutable_header()->set_cluster_id(kCluster);
  first.mutable_header()->set_from(1);
  first.mutable_header()->set_to(2);
  first.set_message(raft::EncodeMessage(m));
  first.set_data("hello ");
  ASSERT_TRUE(writer->Write(first));
  cairnpb::SnapshotChunk last;
  last.set_data("world");
  last.set_last(true);
  last.set_crc32c(base::crc32c::Value(std::string_view("hello world")) ^ 1u);
  writer->Write(last);
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS) << status.error_message();
  EXPECT_FALSE(HasFileWithSuffix(b->snap_dir, ".tmp"));
  EXPECT_FALSE(HasFileWithSuffix(b->snap_dir, ".snap"));
  EXPECT_TRUE(b->handler.snapshots().empty());

  // The same stream with the right checksum is accepted.
  grpc::ClientContext context2;
  auto writer2 = raw.stub()->Snapshot(&context2, &ack);
  ASSERT_TRUE(writer2->Write(first));
  last.set_crc32c(base::crc32c::Value(std::string_view("hello world")));
  writer2->Write(last);
  writer2->WritesDone();
  status = writer2->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(b->handler.snapshots().size(), 1u);
  EXPECT_EQ(ReadFile(b->handler.snapshots()[0].second), "hello world");
}

TEST(TransportTest, SnapshotSendsBeyondTheLimitAreRefusedAtOnce) {
  TransportOptions options;
  options.max_concurrent_snapshot_sends = 1;
  auto a = StartMember(1, options);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  a->handler.SetSnapshot(PseudoRandomBytes(100 * 1024, 3), 10 * 1024);
  a->handler.SetGate(false);  // the first send stays in flight
  a->transport->Send({Snap(1, 2, 1, 5)});
  a->transport->Send({Snap(1, 2, 1, 6)});
  ASSERT_TRUE(WaitFor([&] { return a->handler.snapshot_sent().size() == 1; }));
  EXPECT_EQ(a->handler.snapshot_sent()[0], std::make_pair(uint64_t{2}, false));
  a->handler.SetGate(true);
  ASSERT_TRUE(WaitFor([&] { return a->handler.snapshot_sent().size() == 2; }));
  EXPECT_EQ(a->handler.snapshot_sent()[1], std::make_pair(uint64_t{2}, true));
  ASSERT_TRUE(WaitFor([&] { return b->handler.snapshots().size() == 1; }));
  EXPECT_EQ(b->handler.snapshots()[0].first.snapshot->metadata.index, 5u);
}

TEST(TransportTest, StoppingWithASnapshotInFlightDoesNotHang) {
  auto a = StartMember(1);
  auto b = StartMember(2);
  ASSERT_TRUE(a && b);
  a->transport->AddPeer(2, {b->url()});
  a->handler.SetSnapshot(PseudoRandomBytes(64 * 1024 * 1024, 5), 64 * 1024);
  a->transport->Send({Snap(1, 2, 1, 5)});
  a.reset();
  EXPECT_TRUE(WaitFor([&] { return !HasFileWithSuffix(b->snap_dir, ".tmp"); }));
  EXPECT_TRUE(b->handler.snapshots().empty());
}

}  // namespace
}  // namespace cairn::transport::test
