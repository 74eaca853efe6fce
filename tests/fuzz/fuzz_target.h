// Each fuzz target (tests/fuzz/*_fuzz.cc) defines LLVMFuzzerTestOneInput, which must never crash,
// hang or leak on any input, and FuzzSeeds(): valid inputs built with the real encoders, the
// starting points of the mutations. Built for libFuzzer with -DCAIRN_FUZZ=ON (clang), and always
// with corpus_main.cc as a short seeded ctest (label fuzz; docs/fuzzing.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
std::vector<std::string> FuzzSeeds();
