// Member and cluster ids derived exactly as etcd derives them, so a cairn member started with the
// same --initial-advertise-peer-urls and --initial-cluster-token as an etcd member has its ids.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cairn::etcdserver {

// sha1(sorted peer URLs concatenated + cluster token); the first 8 bytes, big-endian.
uint64_t ComputeMemberId(std::vector<std::string> peer_urls, const std::string& cluster_token);
// sha1(sorted member ids, each as 8 bytes big-endian); the first 8 bytes, big-endian.
uint64_t ComputeClusterId(std::vector<uint64_t> member_ids);
// Lower-case hex without leading zeros, as etcd prints ids.
std::string IdToHex(uint64_t id);

}  // namespace cairn::etcdserver
