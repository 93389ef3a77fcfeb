// The protobuf wire format of a length-delimited field, for messages assembled from parts
// that are serialized already: an event around its instance record (state_events.cc), a page
// of ListInstances around its records (instance_view.cc). A field may follow the others in
// any order, and a repeated field's elements are its fields in the order they appear.
//
// Thread-safety: stateless.
#ifndef NVLSCHED_DAEMON_ENGINE_WIRE_FORMAT_H_
#define NVLSCHED_DAEMON_ENGINE_WIRE_FORMAT_H_

#include <google/protobuf/io/coded_stream.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace nvlsched::daemon {

// Appends the key of field `number` (wire type 2, length-delimited) and the length `size`.
inline void AppendLengthDelimitedKey(int number, size_t size, std::string* out) {
  using google::protobuf::io::CodedOutputStream;
  constexpr size_t kMaxVarint32Bytes = 5;  // 7 bits a byte
  uint8_t buffer[2 * kMaxVarint32Bytes];
  uint8_t* end = CodedOutputStream::WriteVarint32ToArray(
      (static_cast<uint32_t>(number) << 3) | 2, buffer);
  end = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(size), end);
  out->append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(end - buffer));
}

// Appends field `number` holding `bytes` (a serialized message, or a string).
inline void AppendLengthDelimitedField(int number, absl::string_view bytes, std::string* out) {
  AppendLengthDelimitedKey(number, bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_ENGINE_WIRE_FORMAT_H_
