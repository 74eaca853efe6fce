// etcdctl (Debian's etcd-client 3.4, API v3) against a fresh etcd and a fresh cairn: the simple
// output format is checked against written expectations, and -w json output is parsed and compared
// with the answer of a reference etcd running the same commands (apart from cluster_id, member_id
// and raft_term).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/harness/server_process.h"

namespace cairn::testing {
namespace {

class Etcdctl {
 public:
  explicit Etcdctl(std::string urls) : urls_(std::move(urls)) {}

  CommandResult Run(const std::vector<std::string>& args, const std::string& stdin_data = "") {
    std::vector<std::string> argv = {EtcdctlPath(), "--endpoints", urls_, "--command-timeout=20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, stdin_data, 60000);
  }

  // Runs a command that must succeed and returns its stdout.
  std::string Ok(const std::vector<std::string>& args, const std::string& stdin_data = "") {
    CommandResult r = Run(args, stdin_data);
    EXPECT_EQ(r.exit_code, 0) << "etcdctl " << absl::StrJoin(args, " ") << "\n" << r.err;
    return r.out;
  }

  // Runs a command that must fail and returns its "Error: ..." line (etcdctl logs retries as
  // JSON lines on stderr before it).
  std::string Error(const std::vector<std::string>& args, const std::string& stdin_data = "") {
    CommandResult r = Run(args, stdin_data);
    EXPECT_NE(r.exit_code, 0) << "etcdctl " << absl::StrJoin(args, " ") << "\n" << r.out;
    for (absl::string_view line : absl::StrSplit(r.err, '\n')) {
      if (absl::StartsWith(line, "Error:")) return std::string(line);
    }
    return r.err;
  }

 private:
  std::string urls_;
};

class EtcdctlTest : public ::testing::TestWithParam<ServerKind> {
 protected:
  void SetUp() override {
    auto cluster = ServerCluster::Start({.kind = GetParam()});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    ctl_ = std::make_unique<Etcdctl>(cluster_->ClientUrls());
  }

  Etcdctl& ctl() { return *ctl_; }

  std::unique_ptr<ServerCluster> cluster_;
  std::unique_ptr<Etcdctl> ctl_;
};

TEST_P(EtcdctlTest, PutGetDelete) {
  EXPECT_EQ(ctl().Ok({"put", "foo", "bar"}), "OK\n");
  EXPECT_EQ(ctl().Ok({"get", "foo"}), "foo\nbar\n");
  EXPECT_EQ(ctl().Ok({"get", "foo", "--print-value-only"}), "bar\n");
  EXPECT_EQ(ctl().Ok({"get", "missing"}), "");
  EXPECT_EQ(ctl().Ok({"put", "foo", "with spaces\tand tab"}), "OK\n");
  EXPECT_EQ(ctl().Ok({"get", "foo"}), "foo\nwith spaces\tand tab\n");
  EXPECT_EQ(ctl().Ok({"put", "empty", ""}), "OK\n");
  EXPECT_EQ(ctl().Ok({"get", "empty"}), "empty\n\n");
  EXPECT_EQ(ctl().Ok({"put", "foo", "--", "-dash"}), "OK\n");
  EXPECT_EQ(ctl().Ok({"get", "foo", "--print-value-only"}), "-dash\n");
  EXPECT_EQ(ctl().Ok({"put", "foo", "v"}, ""), "OK\n");
  EXPECT_EQ(ctl().Ok({"del", "foo"}), "1\n");
  EXPECT_EQ(ctl().Ok({"del", "foo"}), "0\n");
  EXPECT_EQ(ctl().Ok({"get", "foo"}), "");
  EXPECT_EQ(ctl().Ok({"get", "--hex", "empty"}), "\\x65\\x6d\\x70\\x74\\x79\n\n");
}

TEST_P(EtcdctlTest, PrefixFromKeyRangeLimit) {
  for (const char* k : {"a", "foo", "foo/1", "foo/2", "fop", "z"}) {
    ASSERT_EQ(ctl().Ok({"put", k, absl::StrCat("v-", k)}), "OK\n");
  }
  EXPECT_EQ(ctl().Ok({"get", "--prefix", "foo", "--keys-only"}), "foo\n\nfoo/1\n\nfoo/2\n\n");
  EXPECT_EQ(ctl().Ok({"get", "--prefix", "foo/"}), "foo/1\nv-foo/1\nfoo/2\nv-foo/2\n");
  EXPECT_EQ(ctl().Ok({"get", "--prefix", "foo", "--limit", "2", "--print-value-only"}),
            "v-foo\nv-foo/1\n");
  EXPECT_EQ(ctl().Ok({"get", "--from-key", "fop", "--keys-only"}), "fop\n\nz\n\n");
  EXPECT_EQ(ctl().Ok({"get", "--from-key", "", "--keys-only", "--limit", "3"}),
            "a\n\nfoo\n\nfoo/1\n\n");
  EXPECT_EQ(ctl().Ok({"get", "foo/", "fop", "--keys-only"}), "foo/1\n\nfoo/2\n\n");
  EXPECT_EQ(ctl().Ok({"get", "fop", "a", "--keys-only"}), "");  // range_end < key: empty
  EXPECT_EQ(ctl().Ok({"get", "--prefix", "nothing"}), "");
  EXPECT_EQ(ctl().Ok({"get", "--prefix", "foo", "--consistency=s", "--keys-only"}),
            "foo\n\nfoo/1\n\nfoo/2\n\n");
  EXPECT_EQ(ctl().Ok({"del", "--prefix", "foo/"}), "2\n");
  EXPECT_EQ(ctl().Ok({"del", "--from-key", "fop"}), "2\n");
  EXPECT_EQ(ctl().Ok({"del", "a", "foo"}), "1\n");
  EXPECT_EQ(ctl().Ok({"get", "--from-key", "", "--keys-only"}), "foo\n\n");
}

TEST_P(EtcdctlTest, SortByAndOrder) {
  // a: create 3, mod 5, version 2, value "3"; b: create 2, mod 2, version 1, value "1";
  // c: create 4, mod 4, version 1, value "0".
  for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"b", "1"}, {"a", "2"}, {"c", "0"}, {"a", "3"}}) {
    ASSERT_EQ(ctl().Ok({"put", k, v}), "OK\n");
  }
  auto keys = [&](const std::string& by, const std::string& order) {
    std::vector<std::string> args = {"get", "--from-key", "a", "--keys-only"};
    if (!by.empty()) args.push_back("--sort-by=" + by);
    if (!order.empty()) args.push_back("--order=" + order);
    std::string out = ctl().Ok(args);
    std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
    return absl::StrJoin(lines, "");
  };
  EXPECT_EQ(keys("", ""), "abc");
  EXPECT_EQ(keys("", "DESCEND"), "cba");
  EXPECT_EQ(keys("KEY", "ASCEND"), "abc");
  EXPECT_EQ(keys("KEY", "DESCEND"), "cba");
  EXPECT_EQ(keys("CREATE", "ASCEND"), "bac");
  EXPECT_EQ(keys("CREATE", "DESCEND"), "cab");
  EXPECT_EQ(keys("MODIFY", ""), "bca");
  EXPECT_EQ(keys("MODIFY", "DESCEND"), "acb");
  EXPECT_EQ(keys("VALUE", "ASCEND"), "cba");
  EXPECT_EQ(keys("VALUE", "DESCEND"), "abc");
  // Ties (b and c both at version 1) keep key order in both directions, as etcd's sort does.
  EXPECT_EQ(keys("VERSION", "ASCEND"), "bca");
  EXPECT_EQ(keys("VERSION", "DESCEND"), "abc");
  std::string limited = ctl().Ok({"get", "--from-key", "a", "--keys-only", "--sort-by=MODIFY",
                                  "--order=DESCEND", "--limit=1"});
  EXPECT_EQ(limited, "a\n\n");
}

TEST_P(EtcdctlTest, HistoryRevAndPrevKv) {
  EXPECT_EQ(ctl().Ok({"put", "k", "v1"}), "OK\n");                      // rev 2
  EXPECT_EQ(ctl().Ok({"put", "k", "v2", "--prev-kv"}), "OK\nk\nv1\n");  // rev 3
  EXPECT_EQ(ctl().Ok({"put", "other", "o"}), "OK\n");                   // rev 4
  EXPECT_EQ(ctl().Ok({"del", "k", "--prev-kv"}), "1\nk\nv2\n");         // rev 5
  EXPECT_EQ(ctl().Ok({"get", "k", "--rev=1"}), "");
  EXPECT_EQ(ctl().Ok({"get", "k", "--rev=2"}), "k\nv1\n");
  EXPECT_EQ(ctl().Ok({"get", "k", "--rev=3"}), "k\nv2\n");
  EXPECT_EQ(ctl().Ok({"get", "k", "--rev=4"}), "k\nv2\n");
  EXPECT_EQ(ctl().Ok({"get", "k", "--rev=5"}), "");
  EXPECT_EQ(ctl().Ok({"get", "--from-key", "", "--rev=4", "--keys-only"}), "k\n\nother\n\n");
  EXPECT_EQ(ctl().Ok({"put", "k", "v3"}), "OK\n");  // rev 6: a new life, version 1
  EXPECT_EQ(ctl().Ok({"del", "--prefix", "", "--prev-kv"}), "2\nk\nv3\nother\no\n");
}

TEST_P(EtcdctlTest, TxnNonInteractive) {
  EXPECT_EQ(ctl().Ok({"put", "key1", "v1"}), "OK\n");
  // Compares, blank line, success ops, blank line, failure ops.
  std::string txn =
      "mod(\"key1\") > \"0\"\n"
      "value(\"key1\") = \"v1\"\n"
      "\n"
      "put key1 \"overwrote key1\"\n"
      "get key1\n"
      "\n"
      "put key1 \"created key1\"\n"
      "put key2 \"some extra key\"\n"
      "\n";
  EXPECT_EQ(ctl().Ok({"txn"}, txn), "SUCCESS\n\nOK\n\nkey1\noverwrote key1\n");
  EXPECT_EQ(ctl().Ok({"txn"}, txn), "FAILURE\n\nOK\n\nOK\n");
  EXPECT_EQ(ctl().Ok({"get", "--prefix", "key"}), "key1\ncreated key1\nkey2\nsome extra key\n");
  std::string versions =
      "version(\"key1\") = \"3\"\n"
      "create(\"key2\") = \"4\"\n"
      "\n"
      "del key2\n"
      "\n"
      "\n";
  EXPECT_EQ(ctl().Ok({"txn"}, versions), "SUCCESS\n\n1\n");
  std::string missing =
      "version(\"nope\") = \"0\"\n"
      "create(\"nope\") = \"0\"\n"
      "mod(\"nope\") < \"1\"\n"
      "\n"
      "get --prefix key\n"
      "\n"
      "\n";
  EXPECT_EQ(ctl().Ok({"txn"}, missing), "SUCCESS\n\nkey1\ncreated key1\n");
  EXPECT_EQ(ctl().Ok({"txn"}, "\n\n\n"), "SUCCESS\n");
  EXPECT_EQ(ctl().Ok({"txn"}, "value(\"key1\") != \"x\"\n\ndel --prefix key\n\n\n"),
            "SUCCESS\n\n1\n");
  EXPECT_EQ(ctl().Error({"txn"}, "\n\nput dup 1\nput dup 2\n\n\n"),
            "Error: etcdserver: duplicate key given in txn request");
}

TEST_P(EtcdctlTest, CompactionAndErrors) {
  for (int i = 0; i < 4; ++i) ASSERT_EQ(ctl().Ok({"put", "k", absl::StrCat("v", i)}), "OK\n");
  // Revision is 5 now.
  EXPECT_EQ(ctl().Error({"get", "k", "--rev=6"}),
            "Error: etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(ctl().Error({"get", "k", "--rev=100"}),
            "Error: etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(ctl().Ok({"compaction", "3"}), "compacted revision 3\n");
  EXPECT_EQ(ctl().Error({"get", "k", "--rev=2"}),
            "Error: etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(ctl().Ok({"get", "k", "--rev=3"}), "k\nv1\n");
  EXPECT_EQ(ctl().Error({"compaction", "3"}),
            "Error: etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(ctl().Error({"compaction", "2"}),
            "Error: etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(ctl().Error({"compaction", "9"}),
            "Error: etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(ctl().Ok({"compaction", "--physical", "5"}), "compacted revision 5\n");
  EXPECT_EQ(ctl().Error({"get", "k", "--rev=4"}),
            "Error: etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(ctl().Ok({"get", "k", "--rev=5"}), "k\nv3\n");
  EXPECT_EQ(ctl().Ok({"get", "k"}), "k\nv3\n");
  // Empty keys are rejected by the server.
  EXPECT_EQ(ctl().Error({"get", ""}), "Error: etcdserver: key is not provided");
  EXPECT_EQ(ctl().Error({"put", "", "v"}), "Error: etcdserver: key is not provided");
  EXPECT_EQ(ctl().Error({"del", ""}), "Error: etcdserver: key is not provided");
  // Leases that do not exist.
  EXPECT_EQ(ctl().Error({"put", "k", "v", "--lease=1234"}),
            "Error: etcdserver: requested lease not found");
  // ignore flags on a missing key.
  EXPECT_EQ(ctl().Error({"put", "missing", "--ignore-value"}), "Error: etcdserver: key not found");
  EXPECT_EQ(ctl().Ok({"put", "k", "--ignore-value"}), "OK\n");
  EXPECT_EQ(ctl().Ok({"get", "k", "--print-value-only"}), "v3\n");
}

// -w json answers, parsed and compared with a reference etcd's answers to the same commands.
class EtcdctlJsonTest : public EtcdctlTest {
 protected:
  void SetUp() override {
    EtcdctlTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto reference = ServerCluster::Start({.kind = ServerKind::kEtcd});
    ASSERT_TRUE(reference.ok()) << reference.status();
    reference_ = std::move(*reference);
    reference_ctl_ = std::make_unique<Etcdctl>(reference_->ClientUrls());
  }

  // Drops the fields that legitimately differ between servers, at every depth.
  static void DropIds(google::protobuf::Value* v) {
    if (v->has_struct_value()) {
      auto* fields = v->mutable_struct_value()->mutable_fields();
      for (const char* id : {"cluster_id", "member_id", "raft_term"}) fields->erase(id);
      for (auto& [name, child] : *fields) DropIds(&child);
    } else if (v->has_list_value()) {
      for (auto& child : *v->mutable_list_value()->mutable_values()) DropIds(&child);
    }
  }

  // Canonical text of a JSON value: object keys sorted, numbers as written by %.17g.
  static std::string Canonical(const google::protobuf::Value& v) {
    switch (v.kind_case()) {
      case google::protobuf::Value::kStructValue: {
        std::map<std::string, const google::protobuf::Value*> sorted;
        for (const auto& [name, child] : v.struct_value().fields()) sorted[name] = &child;
        std::vector<std::string> parts;
        for (const auto& [name, child] : sorted) {
          parts.push_back(absl::StrCat("\"", name, "\":", Canonical(*child)));
        }
        return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
      }
      case google::protobuf::Value::kListValue: {
        std::vector<std::string> parts;
        for (const auto& child : v.list_value().values()) parts.push_back(Canonical(child));
        return absl::StrCat("[", absl::StrJoin(parts, ","), "]");
      }
      case google::protobuf::Value::kStringValue:
        return absl::StrCat("\"", v.string_value(), "\"");
      case google::protobuf::Value::kNumberValue:
        return absl::StrFormat("%.17g", v.number_value());
      case google::protobuf::Value::kBoolValue:
        return v.bool_value() ? "true" : "false";
      default:
        return "null";
    }
  }

  static std::string Normalized(const std::string& json) {
    google::protobuf::Value value;
    auto status = google::protobuf::util::JsonStringToMessage(json, &value);
    if (!status.ok()) return absl::StrCat("<unparsable json: ", status.ToString(), ">", json);
    DropIds(&value);
    return Canonical(value);
  }

  // Runs one command on both servers; both must succeed with equal normalized JSON.
  void Same(const std::vector<std::string>& args, const std::string& stdin_data = "") {
    std::vector<std::string> json_args = args;
    json_args.push_back("-w");
    json_args.push_back("json");
    CommandResult mine = ctl().Run(json_args, stdin_data);
    CommandResult ref = reference_ctl_->Run(json_args, stdin_data);
    std::string what = absl::StrCat("etcdctl ", absl::StrJoin(json_args, " "));
    ASSERT_EQ(mine.exit_code, ref.exit_code) << what << "\n" << mine.err << "\n" << ref.err;
    if (ref.exit_code != 0) return;
    if (!absl::StartsWith(ref.out, "{")) {
      // Some commands (compaction) print text even with -w json.
      EXPECT_EQ(mine.out, ref.out) << what;
      return;
    }
    EXPECT_EQ(Normalized(mine.out), Normalized(ref.out))
        << what << "\n"
        << ServerKindName(GetParam()) << ": " << mine.out << "\netcd: " << ref.out;
    EXPECT_EQ(Normalized(ref.out).find("<unparsable"), std::string::npos) << ref.out;
  }

  std::unique_ptr<ServerCluster> reference_;
  std::unique_ptr<Etcdctl> reference_ctl_;
};

TEST_P(EtcdctlJsonTest, MatchesReferenceEtcd) {
  Same({"get", "missing"});
  Same({"put", "foo", "bar"});
  Same({"put", "foo", "baz", "--prev-kv"});
  Same({"put", "foo/1", "x"});
  Same({"put", "foo/2", "y"});
  Same({"put", "zed", "z"});
  Same({"get", "foo"});
  Same({"get", "--prefix", "foo"});
  Same({"get", "--prefix", "foo", "--limit", "1"});
  Same({"get", "--prefix", "foo", "--keys-only"});
  Same({"get", "--from-key", "", "--sort-by=MODIFY", "--order=DESCEND"});
  Same({"get", "--from-key", "foo/1", "--sort-by=VALUE", "--limit=2"});
  Same({"get", "--prefix", "foo", "--rev=3"});
  Same({"get", "--prefix", "foo", "--consistency=s"});
  Same({"txn"}, "value(\"foo\") = \"baz\"\n\nput foo q\nget --prefix foo\ndel zed\n\nput x y\n\n");
  Same({"txn"}, "value(\"foo\") = \"baz\"\n\nput foo q\n\nget foo\nput x y\n\n");
  Same({"del", "foo/1", "--prev-kv"});
  Same({"del", "--prefix", "foo"});
  Same({"compaction", "4"});
  Same({"get", "--from-key", ""});
}

std::string KindName(const ::testing::TestParamInfo<ServerKind>& info) {
  return ServerKindName(info.param);
}

INSTANTIATE_TEST_SUITE_P(Integration, EtcdctlTest, ::testing::ValuesIn(TestedServerKinds()),
                         KindName);
INSTANTIATE_TEST_SUITE_P(Integration, EtcdctlJsonTest, ::testing::ValuesIn(TestedServerKinds()),
                         KindName);

}  // namespace
}  // namespace cairn::testing
