#include "server/main/flags.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <sstream>

#include "server/base/logging.h"

namespace cairn::main {
namespace {

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string JoinComma(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

template <typename T>
absl::Status ParseInt(const std::string& name, const std::string& text, T min, T* out) {
  T v{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < min) {
    return absl::InvalidArgumentError("invalid value \"" + text + "\" for flag --" + name);
  }
  *out = v;
  return absl::OkStatus();
}

// Go's time.ParseDuration subset: a sequence of <number><unit>, unit in h, m, s, ms, us, ns.
absl::Status ParseDurationMs(const std::string& name, const std::string& text, int64_t* out_ms) {
  auto bad = [&] {
    return absl::InvalidArgumentError("invalid duration \"" + text + "\" for flag --" + name);
  };
  if (text.empty()) return bad();
  double total_ms = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    if (i == start) return bad();
    double v = std::stod(text.substr(start, i - start));
    size_t u = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = text.substr(u, i - u);
    if (unit == "h") {
      total_ms += v * 3600e3;
    } else if (unit == "m") {
      total_ms += v * 60e3;
    } else if (unit == "s") {
      total_ms += v * 1e3;
    } else if (unit == "ms") {
      total_ms += v;
    } else if (unit == "us" || unit == "µs") {
      total_ms += v / 1e3;
    } else if (unit == "ns") {
      total_ms += v / 1e6;
    } else {
      return bad();
    }
  }
  *out_ms = static_cast<int64_t>(total_ms);
  return absl::OkStatus();
}

// etcd: periodic retention is a bare number of hours or a duration; revision retention a count.
absl::Status ResolveAutoCompaction(Flags* f) {
  const std::string& v = f->auto_compaction_retention;
  auto& s = f->server;
  if (f->auto_compaction_mode == "revision") {
    s.auto_compaction_mode = etcdserver::CompactionMode::kRevision;
    return ParseInt<int64_t>("auto-compaction-retention", v, 0, &s.auto_compaction_retention);
  }
  s.auto_compaction_mode = etcdserver::CompactionMode::kPeriodic;
  int64_t hours = 0;
  if (ParseInt<int64_t>("auto-compaction-retention", v, 0, &hours).ok()) {
    s.auto_compaction_retention = hours * 3600 * 1000;
    return absl::OkStatus();
  }
  return ParseDurationMs("auto-compaction-retention", v, &s.auto_compaction_retention);
}

struct FlagDef {
  std::string name;
  bool is_bool;
  std::string default_text;
  std::string help;
  std::function<absl::Status(Flags*, const std::string&)> set;
};

std::vector<FlagDef> BaseDefs();

// TLS flags (docs/security.md): `set` gets the client or the peer TlsConfig.
using TlsSet = std::function<void(transport::TlsConfig*, const std::string&)>;
FlagDef TlsFlag(bool peer, const std::string& name, bool is_bool, const std::string& help,
                TlsSet set) {
  return {(peer ? "peer-" : "") + name, is_bool, is_bool ? "false" : "\"\"", help,
          [peer, set](Flags* f, const std::string& v) {
            set(peer ? &f->server.peer_tls : &f->server.client_tls, v);
            return absl::OkStatus();
          }};
}

void AddTlsFlags(std::vector<FlagDef>* defs) {
  using C = transport::TlsConfig;
  for (bool peer : {false, true}) {
    std::string who = peer ? "peer" : "client";
    defs->push_back(TlsFlag(peer, "cert-file", false,
                            "Path to the " + who + " server TLS cert file.",
                            [](C* c, const std::string& v) { c->cert_file = v; }));
    defs->push_back(TlsFlag(peer, "key-file", false, "Path to the " + who + " server TLS key file.",
                            [](C* c, const std::string& v) { c->key_file = v; }));
    defs->push_back(TlsFlag(peer, "trusted-ca-file", false,
                            "Path to the " + who + " server TLS trusted CA file (" + who +
                                " certificates are then required and verified).",
                            [](C* c, const std::string& v) { c->trusted_ca_file = v; }));
    defs->push_back(TlsFlag(peer, "client-cert-auth", true,
                            "Enable " + who + " certificate authentication.",
                            [](C* c, const std::string& v) { c->client_cert_auth = v == "true"; }));
    defs->push_back(TlsFlag(
        peer, "auto-tls", true,
        std::string(peer ? "Peer" : "Client") + " TLS using generated (self-signed) certificates.",
        [](C* c, const std::string& v) { c->auto_tls = v == "true"; }));
  }
  defs->push_back(TlsFlag(true, "cert-allowed-cn", false,
                          "Allowed CN for inter-peer authentication (needs a peer trusted CA).",
                          [](C* c, const std::string& v) { c->allowed_cn = v; }));
  auto both = [](std::function<void(C*, const std::string&)> set) {
    return [set](Flags* f, const std::string& v) {
      set(&f->server.client_tls, v);
      set(&f->server.peer_tls, v);
      return absl::OkStatus();
    };
  };
  defs->push_back({"cipher-suites", false, "\"\" (gRPC's list)",
                   "Comma-separated list of supported TLS 1.2 cipher suites between client/server "
                   "and peers (IANA names, as etcd).",
                   both([](C* c, const std::string& v) { c->cipher_suites = SplitComma(v); })});
  defs->push_back({"tls-min-version", false, "TLS1.2",
                   "Minimum TLS version supported (TLS1.2 or TLS1.3).",
                   both([](C* c, const std::string& v) { c->min_version = v; })});
  defs->push_back({"tls-max-version", false, "TLS1.3",
                   "Maximum TLS version supported (TLS1.2 or TLS1.3).",
                   both([](C* c, const std::string& v) { c->max_version = v; })});
}

std::vector<FlagDef> Defs() {
  std::vector<FlagDef> defs = BaseDefs();
  AddTlsFlags(&defs);
  return defs;
}

std::vector<FlagDef> BaseDefs() {
  Flags d;
  using S = absl::Status;
  return {
      {"name", false, d.server.name, "Human-readable name for this member.",
       [](Flags* f, const std::string& v) {
         f->server.name = v;
         return S();
       }},
      {"data-dir", false, "${name}.cairn", "Path to the data directory.",
       [](Flags* f, const std::string& v) {
         f->server.data_dir = v;
         return S();
       }},
      {"listen-client-urls", false, JoinComma(d.listen_client_urls),
       "List of URLs to listen on for client traffic (http://host:port, or https:// for TLS; port "
       "0 picks one).",
       [](Flags* f, const std::string& v) {
         f->listen_client_urls = SplitComma(v);
         return f->listen_client_urls.empty()
                    ? absl::InvalidArgumentError("--listen-client-urls must not be empty")
                    : S();
       }},
      {"listen-client-http-urls", false, "",
       "List of URLs to serve HTTP/JSON only on (the gateway, /health, /version, /metrics); "
       "the client URLs then serve gRPC only.",
       [](Flags* f, const std::string& v) {
         f->listen_client_http_urls = SplitComma(v);
         return S();
       }},
      {"listen-metrics-urls", false, "", "List of URLs to serve /metrics and /health on.",
       [](Flags* f, const std::string& v) {
         f->listen_metrics_urls = SplitComma(v);
         return S();
       }},
      {"advertise-client-urls", false, "the listen-client-urls",
       "List of this member's client URLs to advertise to the public.",
       [](Flags* f, const std::string& v) {
         f->server.advertise_client_urls = SplitComma(v);
         return S();
       }},
      {"initial-advertise-peer-urls", false, JoinComma(d.server.initial_advertise_peer_urls),
       "List of this member's peer URLs to advertise (they determine the member ID).",
       [](Flags* f, const std::string& v) {
         f->server.initial_advertise_peer_urls = SplitComma(v);
         return S();
       }},
      {"listen-peer-urls", false, "none for a single member",
       "List of URLs to listen on for peer traffic (http://host:port, or https:// for TLS; port "
       "0 picks one). "
       "Required for a cluster of more than one member.",
       [](Flags* f, const std::string& v) {
         f->server.listen_peer_urls = SplitComma(v);
         return S();
       }},
      {"initial-cluster", false, "${name}=<initial-advertise-peer-urls>",
       "Initial cluster configuration for bootstrapping (name=peer-url,...).",
       [](Flags* f, const std::string& v) {
         f->initial_cluster = v;
         return S();
       }},
      {"initial-cluster-state", false, "new", "Initial cluster state ('new' or 'existing').",
       [](Flags* f, const std::string& v) {
         if (v != "new" && v != "existing") {
           return absl::InvalidArgumentError("invalid value \"" + v +
                                             "\" for flag --initial-cluster-state");
         }
         f->initial_cluster_state = v;
         return S();
       }},
      {"initial-cluster-token", false, d.server.initial_cluster_token,
       "Initial cluster token for the cluster during bootstrap.",
       [](Flags* f, const std::string& v) {
         f->server.initial_cluster_token = v;
         return S();
       }},
      {"heartbeat-interval", false, std::to_string(d.server.heartbeat_interval_ms),
       "Time (in milliseconds) of a heartbeat interval.",
       [](Flags* f, const std::string& v) {
         return ParseInt<int64_t>("heartbeat-interval", v, 1, &f->server.heartbeat_interval_ms);
       }},
      {"election-timeout", false, std::to_string(d.server.election_timeout_ms),
       "Time (in milliseconds) for an election to timeout.",
       [](Flags* f, const std::string& v) {
         return ParseInt<int64_t>("election-timeout", v, 1, &f->server.election_timeout_ms);
       }},
      {"snapshot-count", false, std::to_string(d.server.snapshot_count),
       "Number of committed transactions to trigger a snapshot to disk.",
       [](Flags* f, const std::string& v) {
         return ParseInt<uint64_t>("snapshot-count", v, 1, &f->server.snapshot_count);
       }},
      {"experimental-snapshot-catchup-entries", false,
       std::to_string(d.server.snapshot_catch_up_entries),
       "Number of entries for a slow follower to catch up after compacting the raft storage "
       "entries.",
       [](Flags* f, const std::string& v) {
         return ParseInt<uint64_t>("experimental-snapshot-catchup-entries", v, 1,
                                   &f->server.snapshot_catch_up_entries);
       }},
      {"max-request-bytes", false, std::to_string(d.server.max_request_bytes),
       "Maximum client request size in bytes the server will accept.",
       [](Flags* f, const std::string& v) {
         return ParseInt<int64_t>("max-request-bytes", v, 1, &f->server.max_request_bytes);
       }},
      {"quota-backend-bytes", false, "0",
       "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).",
       [](Flags* f, const std::string& v) {
         int64_t q = 0;
         absl::Status st = ParseInt<int64_t>("quota-backend-bytes", v, 0, &q);
         // etcd: 0 means the default quota, 2 GiB.
         f->server.quota_backend_bytes = q > 0 ? q : etcdserver::ServerConfig{}.quota_backend_bytes;
         return st;
       }},
      {"auto-compaction-mode", false, "periodic",
       "Interpret 'auto-compaction-retention' one of: periodic|revision.",
       [](Flags* f, const std::string& v) {
         if (v != "periodic" && v != "revision") {
           return absl::InvalidArgumentError("invalid value \"" + v +
                                             "\" for flag --auto-compaction-mode");
         }
         f->auto_compaction_mode = v;
         return S();
       }},
      {"auto-compaction-interval", false, "5m",
       "Revision mode: time between auto-compactions (etcd's fixed 5m; etcd PR 18472's flag).",
       [](Flags* f, const std::string& v) {
         int64_t ms = 0;
         absl::Status st = ParseDurationMs("auto-compaction-interval", v, &ms);
         if (st.ok() && ms <= 0) {
           st = absl::InvalidArgumentError("--auto-compaction-interval must be positive");
         }
         f->server.auto_compaction_interval_ms = ms;
         return st;
       }},
      {"auto-compaction-retention", false, "0",
       "Auto compaction retention length (periodic: a duration, hours if no unit; revision: a "
       "count). 0 means disable auto compaction.",
       [](Flags* f, const std::string& v) {
         f->auto_compaction_retention = v;
         return S();
       }},
      {"experimental-initial-corrupt-check", true, "false",
       "Enable to check data corruption before serving any client traffic.",
       [](Flags* f, const std::string& v) {
         f->initial_corrupt_check = v == "true";
         return S();
       }},
      {"experimental-corrupt-check-time", false, "0s",
       "Duration of time between cluster corruption check passes.",
       [](Flags* f, const std::string& v) {
         return ParseDurationMs("experimental-corrupt-check-time", v, &f->corrupt_check_time_ms);
       }},
      {"max-txn-ops", false, std::to_string(d.server.max_txn_ops),
       "Maximum number of operations permitted in a transaction.",
       [](Flags* f, const std::string& v) {
         return ParseInt<int>("max-txn-ops", v, 1, &f->server.max_txn_ops);
       }},
      {"experimental-watch-progress-notify-interval", false, "10m0s",
       "Duration of periodic watch progress notifications (0 disables).",
       [](Flags* f, const std::string& v) {
         return ParseDurationMs("experimental-watch-progress-notify-interval", v,
                                &f->server.watch_progress_notify_interval_ms);
       }},
      {"experimental-lease-checkpoint-interval", false, "5m0s",
       "Duration between proposals of leases' remaining TTLs (0 disables).",
       [](Flags* f, const std::string& v) {
         return ParseDurationMs("experimental-lease-checkpoint-interval", v,
                                &f->server.lease_checkpoint_interval_ms);
       }},
      {"experimental-enable-lease-checkpoint", true, "true",
       "Checkpoint remaining lease TTLs through the log (on by default in cairn; etcd 3.4: off).",
       [](Flags* f, const std::string& v) {
         f->lease_checkpoint = v == "true";
         return S();
       }},
      {"auth-token", false, "simple",
       "Specify auth token type and options: 'simple', or "
       "'jwt,pub-key=<path>,priv-key=<path>,sign-method=<RS256|PS256|ES256|HS256|...>[,ttl=5m]'.",
       [](Flags* f, const std::string& v) {
         auto spec = auth::ParseTokenSpec(v);
         if (!spec.ok()) return spec.status();
         f->server.auth_token = *std::move(spec);
         return S();
       }},
      {"auth-token-ttl", false, std::to_string(d.server.auth_token_ttl_seconds),
       "The lifetime in seconds of the auth token.",
       [](Flags* f, const std::string& v) {
         return ParseInt<int64_t>("auth-token-ttl", v, 1, &f->server.auth_token_ttl_seconds);
       }},
      {"bcrypt-cost", false, std::to_string(d.server.bcrypt_cost),
       "Specify bcrypt algorithm cost factor for auth password hashing (4..31).",
       [](Flags* f, const std::string& v) {
         absl::Status st = ParseInt<int>("bcrypt-cost", v, 4, &f->server.bcrypt_cost);
         if (st.ok() && f->server.bcrypt_cost > 31) {
           return absl::InvalidArgumentError("--bcrypt-cost must be in [4, 31]");
         }
         return st;
       }},
      {"strict-reconfig-check", true, "true",
       "Reject reconfiguration requests that would cause quorum loss.",
       [](Flags* f, const std::string& v) {
         f->server.strict_reconfig_check = v == "true";
         return S();
       }},
      {"log-level", false, d.log_level, "Log level: debug, info, warn or error.",
       [](Flags* f, const std::string& v) {
         base::LogLevel level;
         if (!base::ParseLogLevel(v, &level)) {
           return absl::InvalidArgumentError("invalid value \"" + v + "\" for flag --log-level");
         }
         f->log_level = v;
         return S();
       }},
      {"log-format", false, d.log_format,
       "Log format: text (key=value) or json (one JSON object per line, as etcd's zap logger).",
       [](Flags* f, const std::string& v) {
         base::LogFormat format;
         if (!base::ParseLogFormat(v, &format)) {
           return absl::InvalidArgumentError("invalid value \"" + v + "\" for flag --log-format");
         }
         f->log_format = v;
         return S();
       }},
      {"help", true, "false", "Print this help and exit.",
       [](Flags* f, const std::string& v) {
         f->help = v == "true";
         return S();
       }},
      {"version", true, "false", "Print the version and exit.",
       [](Flags* f, const std::string& v) {
         f->version = v == "true";
         return S();
       }},
  };
}

}  // namespace

absl::StatusOr<Flags> ParseFlags(const std::vector<std::string>& args) {
  Flags flags;
  std::vector<FlagDef> defs = Defs();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      return absl::InvalidArgumentError("unexpected argument \"" + arg + "\"");
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    if (arg == "-h") body = "help";
    std::string name = body, value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    const FlagDef* def = nullptr;
    for (const auto& d : defs) {
      if (d.name == name) def = &d;
    }
    if (def == nullptr) return absl::InvalidArgumentError("unknown flag: " + arg);
    if (def->is_bool) {
      if (!has_value) value = "true";
      if (value != "true" && value != "false") {
        return absl::InvalidArgumentError("invalid boolean value \"" + value + "\" for flag --" +
                                          name);
      }
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError("flag needs an argument: --" + name);
      }
      value = args[++i];
    }
    absl::Status s = def->set(&flags, value);
    if (!s.ok()) return s;
  }
  if (flags.server.advertise_client_urls.empty()) {
    flags.server.advertise_client_urls = flags.listen_client_urls;
  }
  if (!flags.lease_checkpoint) flags.server.lease_checkpoint_interval_ms = 0;
  if (absl::Status st = ResolveAutoCompaction(&flags); !st.ok()) return st;
  flags.server.initial_cluster_state_existing = flags.initial_cluster_state == "existing";
  if (!flags.initial_cluster.empty()) {
    // name=url entries; a name may repeat to give a member several peer URLs (as etcd).
    bool mine = false;
    for (const auto& entry : SplitComma(flags.initial_cluster)) {
      size_t eq = entry.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
        return absl::InvalidArgumentError("invalid --initial-cluster entry \"" + entry + "\"");
      }
      std::string name = entry.substr(0, eq);
      std::string url = entry.substr(eq + 1);
      auto& ic = flags.server.initial_cluster;
      auto it = std::find_if(ic.begin(), ic.end(), [&](const auto& p) { return p.first == name; });
      if (it == ic.end()) {
        ic.push_back({name, {url}});
      } else {
        it->second.push_back(url);
      }
      mine = mine || name == flags.server.name;
    }
    if (!mine) {
      return absl::InvalidArgumentError("--initial-cluster has no member named \"" +
                                        flags.server.name + "\" (--name)");
    }
    for (const auto& [name, urls] : flags.server.initial_cluster) {
      if (name != flags.server.name) continue;
      std::vector<std::string> a = urls, b = flags.server.initial_advertise_peer_urls;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      if (a != b) {
        return absl::InvalidArgumentError("--initial-cluster has peer URLs for \"" + name +
                                          "\" that differ from --initial-advertise-peer-urls");
      }
    }
  }
  return flags;
}

std::string Usage() {
  std::ostringstream out;
  out << "Usage: cairn [flags]\n\n"
         "Starts a cairn member: an etcd v3 API compatible key-value store.\n\nFlags:\n";
  for (const auto& d : Defs()) {
    out << "  --" << d.name << (d.is_bool ? "" : " <value>") << "\n      " << d.help
        << " (default: " << (d.default_text.empty() ? "\"\"" : d.default_text) << ")\n";
  }
  return out.str();
}

}  // namespace cairn::main
