// libFuzzer target: every request message of the API from JSON, the way grpcurl and the seed
// API's clients send it. The input is parsed as each request message in turn (unknown fields
// are errors, as in the daemon's JSON paths), and every message it parses as is validated and,
// when valid, converted (request_checks.h). Seeds are the seed documents' example bodies.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "google/protobuf/message.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/request_checks.h"

namespace {

// Equal field by field, a NaN price equal to itself.
bool SameMessage(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  return differencer.Compare(a, b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  for (size_t kind = 0; kind < nvlsched::fuzz::RequestKindCount(); ++kind) {
    std::unique_ptr<google::protobuf::Message> request = nvlsched::fuzz::NewRequest(kind);
    if (!google::protobuf::util::JsonStringToMessage(json, request.get(), options).ok()) continue;
    nvlsched::fuzz::CheckRequest(kind, *request);
    // What parsed prints, and the print parses back to the same message.
    std::string printed;
    FUZZ_CHECK(google::protobuf::util::MessageToJsonString(*request, &printed).ok(),
               request->DebugString());
    std::unique_ptr<google::protobuf::Message> reparsed = nvlsched::fuzz::NewRequest(kind);
    FUZZ_CHECK(google::protobuf::util::JsonStringToMessage(printed, reparsed.get(), options).ok(),
               printed);
    FUZZ_CHECK(SameMessage(*reparsed, *request), printed);
  }
  return 0;
}
