// libFuzzer target: every request message of the API from protobuf wire bytes.
// Input: one byte that picks the message kind (modulo the number of kinds, in the order of
// request_checks.cc), then the message's wire encoding. Bytes that do not parse are skipped;
// a message that parses is validated and, when valid, converted (request_checks.h).
#include <cstddef>
#include <cstdint>
#include <memory>

#include "google/protobuf/message.h"
#include "tests/fuzz/request_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t kind = data[0] % nvlsched::fuzz::RequestKindCount();
  std::unique_ptr<google::protobuf::Message> request = nvlsched::fuzz::NewRequest(kind);
  if (!request->ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  nvlsched::fuzz::CheckRequest(kind, *request);
  return 0;
}
