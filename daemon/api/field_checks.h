// Field checks shared by the request validators (validation.h): UUIDs, names, free text,
// labels, id lists, page sizes. Each check adds at most one violation to a FieldViolations,
// worded so that an operator can fix the request from the message alone.
//
// Thread-safety: pure functions.
#ifndef NVLSCHED_DAEMON_API_FIELD_CHECKS_H_
#define NVLSCHED_DAEMON_API_FIELD_CHECKS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "daemon/api/field_violations.h"
#include "google/protobuf/map.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace nvlsched::daemon {

// Limits shared by several requests (the seed API's, where it states one).
inline constexpr int kMaxLabels = 10;
inline constexpr int kMaxLabelKeyLength = 255;
inline constexpr int kMaxLabelValueLength = 255;
inline constexpr int kMaxDescriptionLength = 1024;
inline constexpr int kMaxRequestIdLength = 128;
inline constexpr int kMaxOrgLength = 256;
inline constexpr int kMaxPageSize = 1000;
// An example shown in messages so the expected form is unmistakable.
inline constexpr absl::string_view kUuidExample = "f97df110-f4de-492e-8849-4a6af68026b0";

// True for 8-4-4-4-12 lower-case hexadecimal digits, e.g. kUuidExample. Any version. Upper case
// is refused (with a message that says so): ids are compared exactly everywhere — the
// allocator's maps, the store's keys — so "ABC..." would name nothing that "abc..." names.
bool IsUuid(absl::string_view text);

// The number of characters (UTF-8 code points) in `text`; proto3 strings are valid UTF-8.
int CharacterCount(absl::string_view text);

// `value` quoted and C-escaped for a message, shortened to its first 64 bytes when longer.
std::string Quote(absl::string_view value);

// Empty: "<field> is required: <what>". Otherwise must be a UUID.
void CheckRequiredUuid(FieldViolations& violations, absl::string_view field,
                       absl::string_view value, absl::string_view what);
// Empty is fine (the field is optional or a filter); otherwise must be a UUID.
void CheckOptionalUuid(FieldViolations& violations, absl::string_view field,
                       absl::string_view value);

// A required organisation name: 1..kMaxOrgLength characters, no whitespace, control characters
// (C0, DEL, C1) or bidirectional controls (it is a path segment of the seed API's URL).
void CheckOrg(FieldViolations& violations, absl::string_view field, absl::string_view org);

// A name: min..max characters, no leading or trailing whitespace, no control characters (C0,
// DEL, C1) and no bidirectional embedding/override/isolate controls (U+202A..U+202E,
// U+2066..U+2069); other unicode (emoji, right-to-left text and its marks) is fine.
// `required` false lets an empty name pass.
void CheckName(FieldViolations& violations, absl::string_view field, absl::string_view name,
               int min_length, int max_length, bool required);

// At most max_length characters.
void CheckMaxLength(FieldViolations& violations, absl::string_view field, absl::string_view value,
                    int max_length);

// At most kMaxLabels entries; keys 1..255 characters, values at most 255, neither with control
// or bidirectional control characters (as CheckName). A bad key or value is reported at
// `labels["key"]`, too many entries at `labels`.
void CheckLabels(FieldViolations& violations, absl::string_view field,
                 const google::protobuf::Map<std::string, std::string>& labels);

// Every entry a UUID (reported at `field[i]`), no entry twice (reported at the second one),
// none equal to `forbidden` when that is non-empty (`forbidden_what` names it in the message).
void CheckUuidList(FieldViolations& violations, absl::string_view field,
                   const google::protobuf::RepeatedPtrField<std::string>& ids,
                   absl::string_view forbidden = {}, absl::string_view forbidden_what = {});

// An idempotency key: at most 128 printable ASCII characters (0x20..0x7e). Empty is fine.
void CheckRequestId(FieldViolations& violations, absl::string_view field,
                    absl::string_view request_id);

// 0..kMaxPageSize (0 means the default of 100).
void CheckPageSize(FieldViolations& violations, absl::string_view field, int page_size);

// Fields of `message` (and of the messages it holds, maps aside) that arrived with the wrong
// wire type: protobuf keeps such a field as an unknown field and the field reads as absent, so
// a gpu_count sent as a string would silently mean "the whole machine". Each is reported at
// its path under `prefix` (e.g. `interfaces[0].subnet_id`). Unknown field numbers (a newer
// client's fields) are not reported: protobuf ignores them by design.
void CheckWireTypes(FieldViolations& violations, absl::string_view prefix,
                    const google::protobuf::Message& message);

}  // namespace nvlsched::daemon

#endif  // NVLSCHED_DAEMON_API_FIELD_CHECKS_H_
