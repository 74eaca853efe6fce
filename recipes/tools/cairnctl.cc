// cairnctl: the coordination recipes from the command line, etcdctl-style.
//
//   cairnctl [--endpoints=h:p,...] [--dial-timeout=S] [--cacert=F] [--cert=F] [--key=F]
//            [--user=NAME[:PASSWORD]] [--password=P] COMMAND ...
//   lock NAME [--ttl=S] [-- CMD ARGS...]   take the lock (etcd's layout: excludes `etcdctl lock`);
//                                          without CMD print the key and hold it until SIGINT or
//                                          SIGTERM; with CMD run it with CAIRN_LOCK_KEY and
//                                          CAIRN_FENCING_TOKEN set, release, exit with its code
//   elect NAME PROPOSAL [--ttl=S]          campaign, print the key and value when elected, lead
//                                          until SIGINT/SIGTERM, then resign
//   elect -l NAME                          print every new leader value until SIGINT/SIGTERM
//   semaphore NAME N [--ttl=S] -- CMD ARGS...
//                                          take one of N permits, run CMD with CAIRN_LOCK_KEY and
//                                          CAIRN_FENCING_TOKEN (the permit's) set, release, exit
//                                          with its code
//   barrier NAME set | remove | wait [--timeout=S]
//                                          raise the barrier (it stays until removed), lower it,
//                                          or wait until it is down
//   counter NAME get | add N | set N | cas OLD NEW
//   queue NAME put VALUE [--priority=P] | take [--timeout=S] | size
//   service register NAME ID ADDRESS [--meta=JSON] [--ttl=S]
//                                          register the instance (key NAME/ID, etcd's endpoints
//                                          JSON value) under a session, print a line on every
//                                          (re-)registration, keep it registered (registering
//                                          again after a lost session) until stdin closes or
//                                          SIGINT/SIGTERM, then deregister
//   service list NAME [--watch]            print the instances, "ID ADDRESS [METADATA]" a line;
//                                          with --watch then print each change ("PUT ID ADDRESS
//                                          [METADATA]" or "DELETE ID") until SIGINT/SIGTERM
//
// Exit codes (etcdctl's numbering): 0 success; 1 an error (printed to stderr); 2 bad usage;
// 3 invalid input (etcdctl's ExitInvalidInput: an empty name, bad JSON, a ttl <= 0 for
// `service`); for `lock -- CMD`, CMD's.
// A lost session while holding a lock or leading prints an error and exits 1.
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "cairn/client.h"
#include "cairn/recipes/barrier.h"
#include "cairn/recipes/counter.h"
#include "cairn/recipes/discovery.h"
#include "cairn/recipes/election.h"
#include "cairn/recipes/mutex.h"
#include "cairn/recipes/queue.h"
#include "cairn/recipes/semaphore.h"
#include "cairn/recipes/session.h"

namespace {

constexpr char kUsage[] =
    "usage: cairnctl [--endpoints=h:p,...] [--dial-timeout=S] [--cacert=F] [--cert=F] [--key=F]\n"
    "                [--user=NAME[:PASSWORD]] [--password=P] COMMAND ...\n"
    "  lock NAME [--ttl=S] [-- CMD ARGS...]\n"
    "  elect NAME PROPOSAL [--ttl=S]\n"
    "  elect -l NAME\n"
    "  semaphore NAME N [--ttl=S] -- CMD ARGS...\n"
    "  barrier NAME set | remove | wait [--timeout=S]\n"
    "  counter NAME get | add N | set N | cas OLD NEW\n"
    "  queue NAME put VALUE [--priority=P] | take [--timeout=S] | size\n"
    "  service register NAME ID ADDRESS [--meta=JSON] [--ttl=S]\n"
    "  service list NAME [--watch]\n";

int Usage() {
  std::cerr << kUsage;
  return 2;
}

int Fail(const std::string& what, const absl::Status& st) {
  std::cerr << "cairnctl: " << what << ": " << st << "\n";
  return 1;
}

constexpr int kExitInvalidInput = 3;  // etcdctl's ExitInvalidInput

int Invalid(const std::string& what, const std::string& why) {
  std::cerr << "cairnctl: " << what << ": " << why << "\n";
  return kExitInvalidInput;
}

// SIGINT/SIGTERM cancel `token` (handled on a thread via sigwait; the signals are blocked in
// every thread, so the client's threads never see them).
class Signals {
 public:
  Signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  void Start() {
    std::thread([this] {
      int sig = 0;
      if (sigwait(&set_, &sig) == 0) {
        signaled_ = true;
        token_.Cancel();
      }
    }).detach();
  }
  const cairn::CancelToken& token() const { return token_; }
  bool signaled() const { return signaled_; }
  const sigset_t& set() const { return set_; }

 private:
  sigset_t set_;
  cairn::CancelToken token_ = cairn::CancelToken::Make();
  std::atomic<bool> signaled_{false};
};

// "--name=value" or "--name value"; returns true and advances when args[*i] is that option.
bool Flag(const std::vector<std::string>& args, size_t* i, const std::string& name,
          std::string* value) {
  const std::string& a = args[*i];
  if (a.rfind(name + "=", 0) == 0) {
    *value = a.substr(name.size() + 1);
    return true;
  }
  if (a == name && *i + 1 < args.size()) {
    *value = args[++*i];
    return true;
  }
  return false;
}

// "--timeout=S" (seconds, fractions allowed) into `call`; false when `args[*i]` is not that flag.
bool TimeoutFlag(const std::vector<std::string>& args, size_t* i, cairn::CallOptions* call) {
  std::string v;
  double s = 0;
  if (!Flag(args, i, "--timeout", &v) || !absl::SimpleAtod(v, &s)) return false;
  call->timeout = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  return true;
}

absl::StatusOr<std::shared_ptr<cairn::recipes::Session>> NewSession(const cairn::Client& client,
                                                                    int64_t ttl) {
  cairn::recipes::SessionOptions so;
  so.ttl_seconds = ttl;
  return cairn::recipes::Session::Create(client, so);
}

int RunWithLock(const std::vector<std::string>& cmd, const cairn::recipes::Grant& g,
                const Signals& signals) {
  pid_t pid = fork();
  if (pid < 0) return Fail("fork", absl::InternalError("fork failed"));
  if (pid == 0) {
    pthread_sigmask(SIG_UNBLOCK, &signals.set(), nullptr);
    setenv("CAIRN_LOCK_KEY", g.key.c_str(), 1);
    setenv("CAIRN_FENCING_TOKEN", std::to_string(g.fencing_token).c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    std::cerr << "cairnctl: cannot run " << cmd[0] << "\n";
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

int Lock(const cairn::Client& client, const std::vector<std::string>& args, Signals& signals) {
  if (args.empty()) return Usage();
  std::string name = args[0];
  int64_t ttl = 10;  // etcdctl lock's default
  std::vector<std::string> cmd;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string v;
    if (args[i] == "--") {
      cmd.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (Flag(args, &i, "--ttl", &v)) {
      if (!absl::SimpleAtoi(v, &ttl)) return Usage();
    } else {
      cmd.assign(args.begin() + static_cast<long>(i), args.end());  // etcdctl style
      break;
    }
  }
  auto session = NewSession(client, ttl);
  if (!session.ok()) return Fail("session", session.status());
  cairn::recipes::Mutex mutex(*session, name);
  cairn::CallOptions wait;
  wait.cancel = signals.token();
  auto g = mutex.Lock(wait);
  if (!g.ok()) return Fail("lock", g.status());
  int code = 0;
  if (cmd.empty()) {
    std::cout << g->key << std::endl;
    cairn::CallOptions hold;
    hold.cancel = signals.token();
    absl::Status ended = (*session)->Wait(hold);
    if (!signals.signaled()) return Fail("lock lost", ended);
  } else {
    code = RunWithLock(cmd, *g, signals);
    if (!(*session)->alive()) {
      std::cerr << "cairnctl: warning: the lock was lost while the command ran: "
                << (*session)->status() << "\n";
    }
  }
  if (auto st = mutex.Unlock(); !st.ok() && (*session)->alive()) return Fail("unlock", st);
  (void)(*session)->Close();
  return code;
}

int Elect(const cairn::Client& client, const std::vector<std::string>& args, Signals& signals) {
  if (args.size() >= 2 && (args[0] == "-l" || args[0] == "--listen")) {
    auto obs = cairn::recipes::LeaderObserver::Start(
        client.kv(), client.watch(), args[1], [&](const cairn::recipes::LeaderInfo& l) {
          std::cout << l.key << "\n" << l.value << std::endl;
        });
    if (!obs.ok()) return Fail("observe", obs.status());
    cairn::CallOptions hold;
    hold.cancel = signals.token();
    (void)(*obs)->WaitFor([](const cairn::recipes::LeaderInfo&) { return false; }, hold);
    return 0;
  }
  if (args.size() < 2) return Usage();
  int64_t ttl = 60;
  for (size_t i = 2; i < args.size(); ++i) {
    std::string v;
    if (!Flag(args, &i, "--ttl", &v) || !absl::SimpleAtoi(v, &ttl)) return Usage();
  }
  auto session = NewSession(client, ttl);
  if (!session.ok()) return Fail("session", session.status());
  cairn::recipes::Election election(*session, args[0]);
  cairn::CallOptions wait;
  wait.cancel = signals.token();
  auto g = election.Campaign(args[1], wait);
  if (!g.ok()) return Fail("campaign", g.status());
  std::cout << g->key << "\n" << args[1] << std::endl;
  absl::Status ended = (*session)->Wait(wait);
  if (!signals.signaled()) return Fail("leadership lost", ended);
  if (auto st = election.Resign(); !st.ok()) return Fail("resign", st);
  (void)(*session)->Close();
  return 0;
}

int SemaphoreCmd(const cairn::Client& client, const std::vector<std::string>& args,
                 Signals& signals) {
  int64_t permits = 0;
  if (args.size() < 2 || !absl::SimpleAtoi(args[1], &permits)) return Usage();
  int64_t ttl = 10;
  std::vector<std::string> cmd;
  for (size_t i = 2; i < args.size(); ++i) {
    std::string v;
    if (args[i] == "--") {
      cmd.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (!Flag(args, &i, "--ttl", &v) || !absl::SimpleAtoi(v, &ttl)) return Usage();
  }
  if (cmd.empty()) return Usage();
  auto session = NewSession(client, ttl);
  if (!session.ok()) return Fail("session", session.status());
  cairn::recipes::Semaphore semaphore(*session, args[0], permits);
  cairn::CallOptions wait;
  wait.cancel = signals.token();
  auto g = semaphore.Acquire(wait);
  if (!g.ok()) {
    (void)(*session)->Close();
    return Fail("semaphore", g.status());
  }
  int code = RunWithLock(cmd, *g, signals);
  if (!(*session)->alive()) {
    std::cerr << "cairnctl: warning: the permit was lost while the command ran: "
              << (*session)->status() << "\n";
  }
  if (auto st = semaphore.Release(); !st.ok() && (*session)->alive()) return Fail("release", st);
  (void)(*session)->Close();
  return code;
}

int BarrierCmd(const cairn::Client& client, const std::vector<std::string>& args,
               Signals& signals) {
  if (args.size() < 2) return Usage();
  // Not bound to a session: a barrier set from a shell stays until someone removes it.
  cairn::recipes::Barrier barrier(client, args[0]);
  const std::string& op = args[1];
  if (op == "set" && args.size() == 2) {
    if (auto st = barrier.Hold(); !st.ok()) return Fail("barrier set", st);
    return 0;
  }
  if (op == "remove" && args.size() == 2) {
    if (auto st = barrier.Release(); !st.ok()) return Fail("barrier remove", st);
    return 0;
  }
  if (op == "wait") {
    cairn::CallOptions wait;
    wait.cancel = signals.token();
    for (size_t i = 2; i < args.size(); ++i) {
      if (!TimeoutFlag(args, &i, &wait)) return Usage();
    }
    if (auto st = barrier.Wait(wait); !st.ok()) return Fail("barrier wait", st);
    return 0;
  }
  return Usage();
}

int CounterCmd(const cairn::Client& client, const std::vector<std::string>& args) {
  if (args.size() < 2) return Usage();
  cairn::recipes::Counter counter(client, args[0]);
  const std::string& op = args[1];
  int64_t a = 0, b = 0;
  if (op == "get" && args.size() == 2) {
    auto v = counter.Get();
    if (!v.ok()) return Fail("counter get", v.status());
    std::cout << *v << "\n";
    return 0;
  }
  if (op == "add" && args.size() == 3 && absl::SimpleAtoi(args[2], &a)) {
    auto v = counter.Add(a);
    if (!v.ok()) return Fail("counter add", v.status());
    std::cout << *v << "\n";
    return 0;
  }
  if (op == "set" && args.size() == 3 && absl::SimpleAtoi(args[2], &a)) {
    if (auto st = counter.Set(a); !st.ok()) return Fail("counter set", st);
    std::cout << a << "\n";
    return 0;
  }
  if (op == "cas" && args.size() == 4 && absl::SimpleAtoi(args[2], &a) &&
      absl::SimpleAtoi(args[3], &b)) {
    auto ok = counter.CompareAndSet(a, b);
    if (!ok.ok()) return Fail("counter cas", ok.status());
    std::cout << (*ok ? "swapped" : "not swapped") << "\n";
    return *ok ? 0 : 1;
  }
  return Usage();
}

int QueueCmd(const cairn::Client& client, const std::vector<std::string>& args, Signals& signals) {
  if (args.size() < 2) return Usage();
  cairn::recipes::Queue queue(client, args[0]);
  const std::string& op = args[1];
  if (op == "put" && args.size() >= 3) {
    int priority = 0;
    for (size_t i = 3; i < args.size(); ++i) {
      std::string v;
      if (!Flag(args, &i, "--priority", &v) || !absl::SimpleAtoi(v, &priority)) return Usage();
    }
    auto key = queue.Enqueue(args[2], priority);
    if (!key.ok()) return Fail("queue put", key.status());
    std::cout << *key << "\n";
    return 0;
  }
  if (op == "take") {
    cairn::CallOptions wait;
    wait.cancel = signals.token();
    for (size_t i = 2; i < args.size(); ++i) {
      if (!TimeoutFlag(args, &i, &wait)) return Usage();
    }
    auto item = queue.Dequeue(wait);
    if (!item.ok()) return Fail("queue take", item.status());
    std::cout << item->value << "\n";
    return 0;
  }
  if (op == "size" && args.size() == 2) {
    auto n = queue.Size();
    if (!n.ok()) return Fail("queue size", n.status());
    std::cout << *n << "\n";
    return 0;
  }
  return Usage();
}

// A validating JSON reader (RFC 8259 grammar; values are not kept).
class JsonChecker {
 public:
  explicit JsonChecker(const std::string& s) : s_(s) {}
  // True when the whole text is one JSON value; else `error` says where it went wrong.
  bool Check(std::string* error) {
    Space();
    bool ok = Value(0);
    Space();
    if (ok && i_ != s_.size()) ok = Err("unexpected text after the value");
    if (!ok) *error = error_ + " at offset " + std::to_string(i_);
    return ok;
  }

 private:
  static constexpr int kMaxDepth = 64;
  bool Err(const char* what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  void Space() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      ++i_;
    }
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool Digits() {
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }
  bool Number() {
    Eat('-');
    if (Eat('0')) {
    } else if (!Digits()) {
      return Err("bad number");
    }
    if (Eat('.') && !Digits()) return Err("bad fraction");
    if (Eat('e') || Eat('E')) {
      if (!Eat('+')) Eat('-');
      if (!Digits()) return Err("bad exponent");
    }
    return true;
  }
  bool String() {
    ++i_;  // the opening quote
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return true;
      if (c < 0x20) return Err("control character in string");
      if (c != '\\') continue;
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      if (e == 'u') {
        for (int k = 0; k < 4; ++k, ++i_) {
          if (i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_]))) {
            return Err("bad \\u escape");
          }
        }
      } else if (std::string("\"\\/bfnrt").find(e) == std::string::npos) {
        return Err("bad escape");
      }
    }
    return Err("unterminated string");
  }
  bool Literal(const char* word) {
    std::string w(word);
    if (s_.compare(i_, w.size(), w) != 0) return Err("unexpected character");
    i_ += w.size();
    return true;
  }
  // Objects and arrays: `close` ends them; `keyed` wants "key": before each value.
  bool Container(char close, bool keyed, int depth) {
    ++i_;
    Space();
    if (Eat(close)) return true;
    while (true) {
      Space();
      if (keyed) {
        if (i_ >= s_.size() || s_[i_] != '"') return Err("expected a string key");
        if (!String()) return false;
        Space();
        if (!Eat(':')) return Err("expected ':'");
        Space();
      }
      if (!Value(depth + 1)) return false;
      Space();
      if (Eat(close)) return true;
      if (!Eat(',')) return Err(keyed ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
  bool Value(int depth) {
    if (depth > kMaxDepth) return Err("nested too deeply");
    if (i_ >= s_.size()) return Err("unexpected end");
    char c = s_[i_];
    if (c == '{') return Container('}', true, depth);
    if (c == '[') return Container(']', false, depth);
    if (c == '"') return String();
    if (c == 't') return Literal("true");
    if (c == 'f') return Literal("false");
    if (c == 'n') return Literal("null");
    if (c == '-' || (c >= '0' && c <= '9')) return Number();
    return Err("unexpected character");
  }

  const std::string& s_;
  size_t i_ = 0;
  std::string error_;
};

// Cancels `token` once stdin reaches end of file (or fails).
void CancelOnStdinEof(const cairn::CancelToken& token) {
  std::thread([token] {
    char buf[256];
    while (true) {
      ssize_t n = read(0, buf, sizeof(buf));
      if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
    token.Cancel();
  }).detach();
}

std::string EndpointLine(const cairn::recipes::ServiceEndpoint& ep) {
  std::string line = ep.id + " " + ep.address;
  if (!ep.metadata.empty()) line += " " + ep.metadata;
  return line;
}

// `service register|list ...`, parsed and checked before connecting (so bad input gets its own
// message and exit code even when no server is reachable).
struct ServiceArgs {
  bool list = false;
  bool watch = false;
  std::string name;
  cairn::recipes::ServiceEndpoint endpoint;
  int64_t ttl_seconds = 10;
};

// 0, or the exit code after printing why: usage (2) or invalid input (3).
int ParseService(const std::vector<std::string>& args, ServiceArgs* out) {
  if (args.empty() || (args[0] != "register" && args[0] != "list")) return Usage();
  out->list = args[0] == "list";
  const std::string what = "service " + args[0];
  if (out->list) {
    if (args.size() < 2) return Usage();
    for (size_t i = 2; i < args.size(); ++i) {
      if (args[i] != "--watch" && args[i] != "-w") return Usage();
      out->watch = true;
    }
    out->name = args[1];
    if (out->name.empty()) return Invalid(what, "empty service name");
    return 0;
  }
  if (args.size() < 4) return Usage();
  out->name = args[1];
  out->endpoint.id = args[2];
  out->endpoint.address = args[3];
  std::string ttl_text = "10";
  for (size_t i = 4; i < args.size(); ++i) {
    std::string v;
    if (Flag(args, &i, "--meta", &v)) {
      out->endpoint.metadata = v;
    } else if (Flag(args, &i, "--ttl", &v)) {
      ttl_text = v;
    } else {
      return Usage();
    }
  }
  const cairn::recipes::ServiceEndpoint& ep = out->endpoint;
  if (out->name.empty()) return Invalid(what, "empty service name");
  if (ep.id.empty()) return Invalid(what, "empty instance id");
  if (ep.id.find('/') != std::string::npos) return Invalid(what, "instance id contains '/'");
  if (ep.address.empty()) return Invalid(what, "empty address");
  if (!absl::SimpleAtoi(ttl_text, &out->ttl_seconds) || out->ttl_seconds <= 0) {
    return Invalid(what, "--ttl must be a whole number of seconds > 0, got \"" + ttl_text + "\"");
  }
  if (std::string err; !ep.metadata.empty() && !JsonChecker(ep.metadata).Check(&err)) {
    return Invalid(what, "--meta is not valid JSON: " + err);
  }
  return 0;
}

// Waits until `token` is canceled (a signal, or stdin's end when that was hooked up).
void WaitCanceled(const cairn::CancelToken& token) {
  cairn::Promise<bool> stop;
  uint64_t id = token.Register([stop] { stop.Set(true); });
  (void)stop.future().Get();
  token.Unregister(id);
}

int ServiceRegister(const cairn::Client& client, const ServiceArgs& a, Signals& signals) {
  const std::string key = a.name + "/" + a.endpoint.id;
  cairn::recipes::ServiceRegistrationOptions options;
  options.ttl_seconds = a.ttl_seconds;
  std::mutex out_mu;  // the callbacks run on the registration's thread
  options.on_registered = [&](cairn::LeaseId lease) {
    std::lock_guard<std::mutex> lock(out_mu);
    std::cout << "registered " << key << " lease " << std::hex << lease << std::dec << std::endl;
  };
  options.on_lost = [&](const absl::Status& why) {
    std::lock_guard<std::mutex> lock(out_mu);
    std::cerr << "cairnctl: registration lost (" << why << "); registering again" << std::endl;
  };
  cairn::CallOptions first;
  first.cancel = signals.token();
  auto reg = cairn::recipes::ServiceRegistration::Start(client, a.name, a.endpoint, options, first);
  if (!reg.ok()) return Fail("service register", reg.status());
  // Registered until stdin closes or a signal arrives.
  CancelOnStdinEof(signals.token());
  WaitCanceled(signals.token());
  if (auto st = (*reg)->Close(); !st.ok()) return Fail("service deregister", st);
  std::cout << "deregistered " << key << std::endl;
  return 0;
}

int ServiceList(const cairn::Client& client, const ServiceArgs& a, Signals& signals) {
  cairn::CallOptions call;
  call.cancel = signals.token();
  auto resolver = cairn::recipes::ServiceResolver::Start(
      client, a.name, cairn::recipes::PickPolicy::kRoundRobin, call);
  if (!resolver.ok()) return Fail("service list", resolver.status());
  if (!a.watch) {
    for (const auto& ep : (*resolver)->Endpoints()) std::cout << EndpointLine(ep) << "\n";
    return 0;
  }
  // The listener diffs each new list against the last one printed.
  std::mutex mu;
  std::map<std::string, cairn::recipes::ServiceEndpoint> shown;
  auto show = [&](const std::vector<cairn::recipes::ServiceEndpoint>& now, bool initial) {
    std::map<std::string, cairn::recipes::ServiceEndpoint> next;
    for (const auto& ep : now) next[ep.id] = ep;
    for (const auto& [id, ep] : next) {
      auto old = shown.find(id);
      if (old != shown.end() && old->second == ep) continue;
      std::cout << (initial ? "" : "PUT ") << EndpointLine(ep) << "\n";
    }
    for (const auto& [id, ep] : shown) {
      if (next.count(id) == 0) std::cout << "DELETE " << id << "\n";
    }
    std::cout << std::flush;
    shown.swap(next);
  };
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    id = (*resolver)->AddListener([&](const std::vector<cairn::recipes::ServiceEndpoint>& now) {
      std::lock_guard<std::mutex> lock(mu);
      show(now, false);
    });
    show((*resolver)->Endpoints(), true);
  }
  WaitCanceled(signals.token());
  (*resolver)->RemoveListener(id);
  return 0;
}

}  // namespace

namespace {

// etcdctl's global flags, before the command: --endpoints, --dial-timeout, --cacert, --cert,
// --key (TLS; https:// endpoints imply it too), --user NAME[:PASSWORD], --password. Returns the
// index of the command, or -1 after printing help (exit 0) and -2 on a bad flag (usage, exit 2).
long ParseGlobal(const std::vector<std::string>& args, cairn::ClientOptions* options) {
  size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string v;
    if (Flag(args, &i, "--endpoints", &v)) {
      options->endpoints = absl::StrSplit(v, ',', absl::SkipEmpty());
    } else if (Flag(args, &i, "--dial-timeout", &v)) {
      double s = 0;
      if (!absl::SimpleAtod(v, &s) || s <= 0) return -2;
      options->dial_timeout = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
    } else if (Flag(args, &i, "--cacert", &v)) {
      options->tls.enabled = true;
      options->tls.ca_file = v;
    } else if (Flag(args, &i, "--cert", &v)) {
      options->tls.enabled = true;
      options->tls.cert_file = v;
    } else if (Flag(args, &i, "--key", &v)) {
      options->tls.enabled = true;
      options->tls.key_file = v;
    } else if (Flag(args, &i, "--user", &v)) {
      size_t colon = v.find(':');
      options->username = v.substr(0, colon);
      if (colon != std::string::npos) options->password = v.substr(colon + 1);
      if (options->username.empty()) return -2;
    } else if (Flag(args, &i, "--password", &v)) {
      options->password = v;
    } else if (args[i] == "-h" || args[i] == "--help") {
      return -1;
    } else {
      break;
    }
  }
  return static_cast<long>(i);
}

}  // namespace

int main(int argc, char** argv) {
  Signals signals;  // before any thread exists
  std::vector<std::string> args(argv + 1, argv + argc);
  cairn::ClientOptions options;
  options.endpoints = {"127.0.0.1:2379"};
  const long parsed = ParseGlobal(args, &options);
  if (parsed == -1) {
    std::cout << kUsage;
    return 0;
  }
  if (parsed < 0) return Usage();
  const size_t i = static_cast<size_t>(parsed);
  if (i >= args.size()) return Usage();
  std::string command = args[i];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
  if (command != "lock" && command != "elect" && command != "semaphore" && command != "barrier" &&
      command != "counter" && command != "queue" && command != "service") {
    return Usage();
  }
  ServiceArgs service;
  if (command == "service") {
    if (int rc = ParseService(rest, &service); rc != 0) return rc;
  }
  auto client = cairn::Client::Connect(options);
  if (!client.ok()) return Fail("connect", client.status());
  signals.Start();
  if (command == "lock") return Lock(**client, rest, signals);
  if (command == "elect") return Elect(**client, rest, signals);
  if (command == "semaphore") return SemaphoreCmd(**client, rest, signals);
  if (command == "barrier") return BarrierCmd(**client, rest, signals);
  if (command == "counter") return CounterCmd(**client, rest);
  if (command == "service") {
    return service.list ? ServiceList(**client, service, signals)
                        : ServiceRegister(**client, service, signals);
  }
  return QueueCmd(**client, rest, signals);
}
