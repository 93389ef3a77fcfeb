// The checks the request fuzzers (request_bytes_fuzzer.cc, request_json_fuzzer.cc) run on every
// request message of the API: validation (daemon/validation.h) must return OK or
// INVALID_ARGUMENT with a well-formed google.rpc.BadRequest that survives the gRPC status
// mapping; a request that validates is converted to the allocator's and the store's types
// (daemon/convert.h) and the conversions must round-trip.
//
// A broken property aborts (FUZZ_CHECK), which libFuzzer reports as a crash.
#ifndef NVLSCHED_TESTS_FUZZ_REQUEST_CHECKS_H_
#define NVLSCHED_TESTS_FUZZ_REQUEST_CHECKS_H_

#include <cstddef>
#include <memory>

#include "google/protobuf/message.h"

namespace nvlsched::fuzz {

// The request messages, in a fixed order (the bytes target's first byte picks one; the order
// is part of its corpus format: append, never reorder).
size_t RequestKindCount();
// A new empty message of kind `kind` (REQUIRES: kind < RequestKindCount()).
std::unique_ptr<google::protobuf::Message> NewRequest(size_t kind);
// Validates `request` (of kind `kind`), checks the status, and converts it when valid.
void CheckRequest(size_t kind, const google::protobuf::Message& request);

}  // namespace nvlsched::fuzz

#endif  // NVLSCHED_TESTS_FUZZ_REQUEST_CHECKS_H_
