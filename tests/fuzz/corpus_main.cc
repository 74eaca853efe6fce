// The CI form of a fuzz target, built with any compiler: feeds the target its FuzzSeeds(), every
// file in the corpus directory, and `--mutations` seeded mutations of each (bit flips, truncation,
// insertion, byte overwrites, duplicated ranges). Exits non-zero only if the target crashes or
// aborts (which kills the process); prints what it ran.
//
//   cairn_fuzz_<target>_corpus tests/fuzz/corpus/<target> [--mutations N] [--seed S]
//   cairn_fuzz_<target>_corpus --write-seeds DIR     (writes FuzzSeeds() as files seed-<i>)
#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_target.h"

namespace {

std::vector<std::string> ReadCorpus(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::ifstream in(dir + "/" + name, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    out.push_back(buffer.str());
  }
  ::closedir(d);
  return out;
}

std::string Mutate(std::string s, std::mt19937_64& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    const size_t at = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 5) {
      case 0:
        if (!s.empty()) s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8)));
        break;
      case 1:
        s.resize(at);
        break;
      case 2:
        s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rng()));
        break;
      case 3:
        if (!s.empty()) s[at] = (rng() % 2) ? '\xff' : '\0';
        break;
      default:
        if (!s.empty()) s.insert(at, s.substr(at, 1 + rng() % 16));
        break;
    }
  }
  return s;
}

void Run(const std::string& input) {
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int mutations = 1000;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--mutations" && i + 1 < argc) {
      mutations = std::atoi(argv[++i]);
    } else if (arg == "--write-seeds" && i + 1 < argc) {
      std::vector<std::string> seeds = FuzzSeeds();
      for (size_t k = 0; k < seeds.size(); ++k) {
        std::ofstream(std::string(argv[i + 1]) + "/seed-" + std::to_string(k), std::ios::binary)
            << seeds[k];
      }
      return 0;
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      dir = arg;
    }
  }
  std::vector<std::string> inputs = FuzzSeeds();
  std::vector<std::string> corpus = ReadCorpus(dir);
  if (!dir.empty() && corpus.empty()) {
    std::cerr << "empty or missing corpus directory " << dir << "\n";
    return 2;
  }
  inputs.insert(inputs.end(), corpus.begin(), corpus.end());
  std::mt19937_64 rng(seed);
  int64_t runs = 0;
  for (const std::string& input : inputs) {
    Run(input);
    ++runs;
    for (int m = 0; m < mutations; ++m, ++runs) Run(Mutate(input, rng));
  }
  std::cout << "ran " << runs << " inputs (" << inputs.size() << " seeds and corpus files, seed "
            << seed << ")\n";
  return 0;
}
