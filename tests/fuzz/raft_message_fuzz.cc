// The peer transport's message decoder (raft::DecodeMessage, what the transport runs on every
// received chunk) and the entry / conf change / snapshot decoders. A message that decodes must
// re-encode to bytes that decode to the same message.
#include <cstdlib>

#include "server/raft/message.h"
#include "tests/fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto message = cairn::raft::DecodeMessage(in);
  if (message.ok()) {
    auto again = cairn::raft::DecodeMessage(cairn::raft::EncodeMessage(*message));
    if (!again.ok() || !(*again == *message)) std::abort();
  }
  (void)cairn::raft::DecodeEntry(in);
  (void)cairn::raft::DecodeConfChange(in);
  (void)cairn::raft::DecodeSnapshot(in);
  return 0;
}

std::vector<std::string> FuzzSeeds() {
  cairn::raft::Message m;
  m.type = cairn::raft::MessageType::kApp;
  m.from = 1;
  m.to = 2;
  m.term = 3;
  m.log_term = 2;
  m.index = 10;
  m.commit = 9;
  cairn::raft::Entry e;
  e.term = 3;
  e.index = 11;
  e.data = "payload";
  m.entries.push_back(e);
  std::string entry;
  cairn::raft::EncodeEntry(e, &entry);
  cairn::raft::Message vote;
  vote.type = cairn::raft::MessageType::kVote;
  vote.from = 2;
  vote.to = 1;
  vote.term = 4;
  vote.context = "transfer";
  return {cairn::raft::EncodeMessage(m), cairn::raft::EncodeMessage(vote), entry};
}
