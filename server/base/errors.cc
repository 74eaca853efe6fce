#include "server/base/errors.h"

#include <string_view>

namespace cairn::base {

const ErrorRow* ErrorTable(size_t* size) {
  *size = etcd::kEtcdErrorCount;
  return etcd::kEtcdErrors;
}

absl::Status MakeError(ErrorKind kind) {
  const ErrorRow& row = etcd::EtcdErrorRowOf(kind);
  return absl::Status(row.code, absl::string_view(row.message.data(), row.message.size()));
}

bool IsError(const absl::Status& status, ErrorKind kind) {
  const ErrorRow& row = etcd::EtcdErrorRowOf(kind);
  absl::string_view m = status.message();
  return status.code() == row.code && std::string_view(m.data(), m.size()) == row.message;
}

}  // namespace cairn::base
