// Linearizability by revision order (docs/history_checker.md, steps 1-6).
#include "tests/history/checker.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/history/checker_internal.h"

namespace cairn::history {
namespace {

using internal::KvHistory;
constexpr size_t kNone = std::numeric_limits<size_t>::max();
constexpr int64_t kInf = std::numeric_limits<int64_t>::max();

// True when an ok response says the op consumed a revision (step 1).
bool ClaimsWrite(const Operation& op) {
  const auto& branch = op.response.succeeded ? op.request.success : op.request.failure;
  for (size_t i = 0; i < branch.size(); ++i) {
    if (branch[i].type == Op::Type::kPut) return true;
    if (branch[i].type == Op::Type::kDeleteRange && i < op.response.responses.size() &&
        op.response.responses[i].deleted > 0) {
      return true;
    }
  }
  return false;
}

// What differs between a recorded response and the model's answer ("" when equal).
std::string Diff(const Response& got, const Applied& want) {
  if (got.succeeded != want.succeeded) {
    return absl::StrCat("succeeded=", got.succeeded, ", model says ", want.succeeded);
  }
  if (got.responses.size() != want.responses.size()) {
    return absl::StrCat(got.responses.size(), " op responses, model has ", want.responses.size());
  }
  for (size_t i = 0; i < got.responses.size(); ++i) {
    const OpResponse& g = got.responses[i];
    const OpResponse& m = want.responses[i];
    if (SameResponse(g, m)) continue;
    std::string out = absl::StrCat("op ", i, ": count ", g.count, "/", m.count, " deleted ",
                                   g.deleted, "/", m.deleted, " kvs got [");
    for (const KeyValue& kv : g.kvs)
      absl::StrAppend(&out, kv.key, "=", kv.value, "@", kv.mod_revision, " ");
    absl::StrAppend(&out, "] model [");
    for (const KeyValue& kv : m.kvs)
      absl::StrAppend(&out, kv.key, "=", kv.value, "@", kv.mod_revision, " ");
    return out + "]";
  }
  return "";
}

class KvChecker {
 public:
  KvChecker(const History& history, const CheckOptions& options, Report& report)
      : history_(history), options_(options), report_(report) {}

  void Run() {
    if (!Classify()) return;
    bool found = Search(/*strict=*/true);
    if (!found && !budget_exceeded_) found = Search(/*strict=*/false);
    if (!found) {
      report_.anomalies.push_back(budget_exceeded_
                                      ? absl::StrCat("search-budget: no write order found within ",
                                                     options_.search_budget, " steps")
                                      : deepest_failure_);
      return;
    }
    CheckClaims();
    CheckReads();
    CheckRealTime();
    CheckFailedWrites();
    internal::CheckWatchers(history_, kv_, report_);
  }

 private:
  const Operation& Op(size_t i) const { return history_.operations[i]; }

  // Steps 1-3 preparation: claims, max revision, candidates, watch observations.
  bool Classify() {
    const auto& ops = history_.operations;
    for (size_t i = 0; i < ops.size(); ++i) {
      const Operation& op = ops[i];
      if (op.outcome == Outcome::kOk) {
        max_rev_ = std::max(max_rev_, op.response.revision);
        if (ClaimsWrite(op)) {
          auto [it, inserted] = claims_.emplace(op.response.revision, i);
          if (!inserted) {
            report_.anomalies.push_back(absl::StrCat("duplicate-revision: ops ", it->second,
                                                     " and ", i, " both claim revision ",
                                                     op.response.revision));
          }
          if (op.response.revision < 2) {
            report_.anomalies.push_back(absl::StrCat(
                "bad-revision: op ", i, " claims write revision ", op.response.revision));
          }
        }
      } else if (op.outcome == Outcome::kUnknown && MayWrite(op.request)) {
        unknown_.push_back(i);
      }
    }
    for (const Watcher& watcher : history_.watchers) {
      for (const WatchStream& stream : watcher.streams) {
        max_rev_ = std::max(max_rev_, internal::LastEventRevision(stream));
      }
    }
    max_rev_ = std::max<int64_t>(max_rev_, 1);
    report_.max_revision = max_rev_;
    // suffix_min_complete_[r]: the earliest completion of an ok op with revision >= r (step 3a).
    suffix_min_complete_.assign(max_rev_ + 2, kInf);
    for (const Operation& op : ops) {
      if (op.outcome != Outcome::kOk || op.response.revision < 1) continue;
      int64_t& slot = suffix_min_complete_[std::min(op.response.revision, max_rev_)];
      slot = std::min(slot, op.complete_ns);
    }
    for (int64_t r = max_rev_ - 1; r >= 0; --r) {
      suffix_min_complete_[r] = std::min(suffix_min_complete_[r], suffix_min_complete_[r + 1]);
    }
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].outcome == Outcome::kOk && ops[i].response.revision >= 1 && !IsClaimant(i)) {
        reads_at_[ops[i].response.revision].push_back(i);
      }
    }
    return report_.anomalies.empty();
  }

  bool IsClaimant(size_t i) const {
    auto it = claims_.find(Op(i).response.revision);
    return it != claims_.end() && it->second == i;
  }

  Applied Apply(size_t i, int64_t rev) const {
    return ApplyRequest(kv_.states[rev - 1], Op(i).request, rev, [this](int64_t r) -> const State* {
      return r >= 1 && r < static_cast<int64_t>(kv_.states.size()) ? &kv_.states[r] : nullptr;
    });
  }

  // Step 3 (c): the candidate's events equal what every covering watch stream got at `rev`.
  bool WatchAgrees(int64_t rev, const std::vector<Event>& events) const {
    for (const Watcher& watcher : history_.watchers) {
      for (const WatchStream& stream : watcher.streams) {
        if (stream.start_revision > rev || internal::LastEventRevision(stream) < rev) continue;
        std::vector<Event> got;
        for (const WatchResponse& response : stream.responses) {
          for (const Event& event : response.events) {
            if (event.kv.mod_revision == rev) got.push_back(event);
          }
        }
        if (got != internal::Filter(events, watcher)) return false;
      }
    }
    return true;
  }

  // Reads whose header revision is `rev` agree with states[rev] (strict search only).
  bool ReadsAgree(int64_t rev) const {
    auto it = reads_at_.find(rev);
    if (it == reads_at_.end()) return true;
    for (size_t i : it->second) {
      Applied applied = Apply(i, rev + 1);
      if (applied.mutated || !Diff(Op(i).response, applied).empty()) return false;
    }
    return true;
  }

  void Assign(int64_t rev, size_t writer, Applied applied) {
    kv_.states.resize(rev + 1);
    kv_.events.resize(rev + 1);
    kv_.states[rev] = std::move(applied.state);
    kv_.events[rev] = std::move(applied.events);
    writer_[rev] = writer;
  }

  // Tries to fill revision `rev`; false when neither its claimant nor any candidate fits.
  bool TryRevision(int64_t rev, bool strict) {
    kv_.states.resize(rev);
    kv_.events.resize(rev);
    auto claim = claims_.find(rev);
    if (claim != claims_.end()) {
      Applied applied = Apply(claim->second, rev);
      if (strict && (!applied.mutated || !Diff(Op(claim->second).response, applied).empty())) {
        Fail(rev, absl::StrCat("write-mismatch: op ", claim->second, " at revision ", rev, ": ",
                               applied.mutated ? Diff(Op(claim->second).response, applied)
                                               : "model wrote nothing"));
        return false;
      }
      Assign(rev, claim->second, std::move(applied));
      if (strict && !ReadsAgree(rev)) {
        Fail(rev, ReadFailure(rev));
        return false;
      }
      return true;
    }
    if (choices_.empty() || choices_.back().rev != rev) {
      Choice choice{.rev = rev, .candidates = {}, .next = 0};
      for (size_t i : unknown_) {
        if (Op(i).invoke_ns < suffix_min_complete_[rev]) choice.candidates.push_back(i);
      }
      choices_.push_back(std::move(choice));
    }
    Choice& choice = choices_.back();
    while (choice.next < choice.candidates.size()) {
      const size_t i = choice.candidates[choice.next++];
      if (used_.contains(i)) continue;
      if (++steps_ > options_.search_budget) {
        budget_exceeded_ = true;
        return false;
      }
      Applied applied = Apply(i, rev);
      if (!applied.mutated || !WatchAgrees(rev, applied.events)) continue;
      Assign(rev, i, std::move(applied));
      if (strict && !ReadsAgree(rev)) continue;
      used_.insert(i);
      return true;
    }
    choices_.pop_back();
    Fail(rev,
         absl::StrCat("no-writer: revision ", rev, " has no write that could have produced it"));
    return false;
  }

  std::string ReadFailure(int64_t rev) const {
    for (size_t i : reads_at_.at(rev)) {
      Applied applied = Apply(i, rev + 1);
      if (applied.mutated)
        return absl::StrCat("read-mismatch: op ", i, " at revision ", rev, " would have written");
      std::string diff = Diff(Op(i).response, applied);
      if (!diff.empty())
        return absl::StrCat("read-mismatch: op ", i, " at revision ", rev, ": ", diff);
    }
    return "";
  }

  void Fail(int64_t rev, std::string why) {
    if (rev >= deepest_rev_) {
      deepest_rev_ = rev;
      deepest_failure_ = std::move(why);
    }
  }

  // Iterative depth-first search over the gap choices (step 3).
  bool Search(bool strict) {
    choices_.clear();
    used_.clear();
    writer_.assign(max_rev_ + 1, kNone);
    kv_.states.assign(2, State{});
    kv_.events.assign(2, {});
    int64_t rev = 2;
    while (rev <= max_rev_) {
      if (TryRevision(rev, strict)) {
        ++rev;
        continue;
      }
      if (budget_exceeded_ || choices_.empty()) return false;
      rev = choices_.back().rev;
      used_.erase(writer_[rev]);
      writer_[rev] = kNone;
    }
    return true;
  }

  // Step 4 for writers: each ok claimant's response equals the model's.
  void CheckClaims() {
    for (int64_t rev = 2; rev <= max_rev_; ++rev) {
      const size_t i = writer_[rev];
      if (Op(i).outcome != Outcome::kOk) {
        ++report_.unknown_resolved;
        continue;
      }
      ++report_.ops_checked;
      Applied applied = Apply(i, rev);
      if (!applied.mutated) {
        report_.anomalies.push_back(absl::StrCat("write-mismatch: op ", i, " claims revision ", rev,
                                                 " but changed nothing on the model"));
        continue;
      }
      std::string diff = Diff(Op(i).response, applied);
      if (!diff.empty())
        report_.anomalies.push_back(
            absl::StrCat("write-mismatch: op ", i, " at revision ", rev, ": ", diff));
    }
  }

  // Step 4 for non-mutating ops: answers equal the model at their header revision.
  void CheckReads() {
    for (const auto& [rev, ops] : reads_at_) {
      for (size_t i : ops) {
        ++report_.ops_checked;
        if (rev > max_rev_) continue;
        Applied applied = Apply(i, rev + 1);
        if (applied.mutated) {
          report_.anomalies.push_back(absl::StrCat("read-mismatch: op ", i,
                                                   " reports no write at revision ", rev,
                                                   " but would have written on the model"));
          continue;
        }
        std::string diff = Diff(Op(i).response, applied);
        if (!diff.empty())
          report_.anomalies.push_back(
              absl::StrCat("read-mismatch: op ", i, " at revision ", rev, ": ", diff));
      }
    }
    for (size_t i = 0; i < history_.operations.size(); ++i) {
      if (Op(i).outcome == Outcome::kOk && Op(i).response.revision < 1) {
        report_.anomalies.push_back(
            absl::StrCat("bad-revision: op ", i, " has header revision ", Op(i).response.revision));
      }
    }
  }

  // Step 5: no going back, no reading the future.
  void CheckRealTime() {
    struct Placed {
      size_t op;
      int64_t rev;
      bool writes;
    };
    std::vector<Placed> placed;
    for (size_t i = 0; i < history_.operations.size(); ++i) {
      if (Op(i).outcome == Outcome::kOk && Op(i).response.revision >= 1) {
        placed.push_back({i, Op(i).response.revision, IsClaimant(i)});
      }
    }
    for (int64_t rev = 2; rev <= max_rev_; ++rev) {
      if (Op(writer_[rev]).outcome != Outcome::kOk) placed.push_back({writer_[rev], rev, true});
    }
    std::vector<Placed> by_complete;
    for (const Placed& p : placed) {
      if (Op(p.op).outcome == Outcome::kOk) by_complete.push_back(p);
    }
    std::sort(by_complete.begin(), by_complete.end(), [this](const Placed& a, const Placed& b) {
      return Op(a.op).complete_ns < Op(b.op).complete_ns;
    });
    std::vector<size_t> prefix_best(
        by_complete.size());  // index into by_complete of max rev so far
    for (size_t k = 0; k < by_complete.size(); ++k) {
      prefix_best[k] = (k > 0 && by_complete[prefix_best[k - 1]].rev >= by_complete[k].rev)
                           ? prefix_best[k - 1]
                           : k;
    }
    std::vector<int64_t> max_invoke(max_rev_ + 1, 0);
    for (int64_t rev = 2; rev <= max_rev_; ++rev) {
      max_invoke[rev] = std::max(max_invoke[rev - 1], Op(writer_[rev]).invoke_ns);
    }
    for (const Placed& b : placed) {
      const int64_t invoke = Op(b.op).invoke_ns;
      auto end =
          std::lower_bound(by_complete.begin(), by_complete.end(), invoke,
                           [this](const Placed& p, int64_t t) { return Op(p.op).complete_ns < t; });
      if (end != by_complete.begin()) {
        const Placed& a = by_complete[prefix_best[(end - by_complete.begin()) - 1]];
        if (a.rev > b.rev || (a.rev == b.rev && b.writes && a.op != b.op)) {
          report_.anomalies.push_back(absl::StrCat(
              "real-time: op ", a.op, " (revision ", a.rev, ") completed before op ", b.op,
              " (revision ", b.rev, b.writes ? ", a write" : "", ") was invoked"));
        }
      }
      if (Op(b.op).outcome == Outcome::kOk && b.rev <= max_rev_ &&
          max_invoke[b.rev] > Op(b.op).complete_ns) {
        report_.anomalies.push_back(absl::StrCat("future-read: op ", b.op, " at revision ", b.rev,
                                                 " sees a write invoked after it completed"));
      }
    }
  }

  // Step 6: a failed put's value never becomes visible.
  void CheckFailedWrites() {
    std::set<std::string> written;
    for (const auto& events : kv_.events) {
      for (const Event& e : events) {
        if (e.type == Event::Type::kPut) written.insert(e.kv.value);
      }
    }
    for (size_t i = 0; i < history_.operations.size(); ++i) {
      if (Op(i).outcome != Outcome::kFailed) continue;
      for (const auto* branch : {&Op(i).request.success, &Op(i).request.failure}) {
        for (const auto& o : *branch) {
          if (o.type == Op::Type::kPut && written.contains(o.value)) {
            report_.anomalies.push_back(absl::StrCat(
                "failed-write-visible: op ", i, " failed but its value ", o.value, " was written"));
          }
        }
      }
    }
  }

  struct Choice {
    int64_t rev;
    std::vector<size_t> candidates;
    size_t next;
  };

  const History& history_;
  const CheckOptions& options_;
  Report& report_;
  int64_t max_rev_ = 1;
  std::map<int64_t, size_t> claims_;
  std::map<int64_t, std::vector<size_t>> reads_at_;
  std::vector<size_t> unknown_;
  std::vector<int64_t> suffix_min_complete_;
  KvHistory kv_;
  std::vector<size_t> writer_;
  std::vector<Choice> choices_;
  std::set<size_t> used_;
  int64_t steps_ = 0;
  bool budget_exceeded_ = false;
  int64_t deepest_rev_ = 0;
  std::string deepest_failure_;
};

}  // namespace

std::string Report::Summary() const {
  std::string out =
      absl::StrCat(ok() ? "OK" : "ANOMALIES", ": ops checked ", ops_checked, ", unknown resolved ",
                   unknown_resolved, ", watch events checked ", events_checked, ", max revision ",
                   max_revision, ", anomalies ", anomalies.size());
  for (size_t i = 0; i < anomalies.size() && i < 20; ++i)
    absl::StrAppend(&out, "\n  ", anomalies[i]);
  for (size_t i = 0; i < notes.size() && i < 5; ++i) absl::StrAppend(&out, "\n  note: ", notes[i]);
  return out;
}

bool Report::Has(const std::string& kind) const {
  return std::any_of(anomalies.begin(), anomalies.end(),
                     [&](const std::string& a) { return a.rfind(kind + ":", 0) == 0; });
}

Report Check(const History& history, const CheckOptions& options) {
  Report report;
  KvChecker(history, options, report).Run();
  return report;
}

}  // namespace cairn::history
