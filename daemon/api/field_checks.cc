#include "daemon/api/field_checks.h"

#include <map>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/unknown_field_set.h"

namespace nvlsched::daemon {
namespace {

constexpr size_t kQuoteLimit = 64;

std::string NotAUuid(absl::string_view field, absl::string_view value) {
  // Ids are compared exactly (the allocator's maps, the store's keys), so an id in upper case
  // would name nothing; RFC 4122 prints UUIDs in lower case.
  if (IsUuid(absl::AsciiStrToLower(value))) {
    return absl::StrCat(field, " must be written in lower case (ids are compared exactly), got ",
                        Quote(value), "; send ", Quote(absl::AsciiStrToLower(value)));
  }
  return absl::StrCat(field, " must be a UUID of 8-4-4-4-12 hex digits (e.g. ",
                      kUuidExample, "), got ", Quote(value));
}

// C0 controls, DEL and the C1 controls U+0080..U+009F (UTF-8 C2 80..C2 9F; U+0085 is a
// newline).
bool HasControlCharacter(absl::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f) return true;
    if (byte == 0xc2 && i + 1 < text.size() &&
        (static_cast<unsigned char>(text[i + 1]) & 0xe0) == 0x80) {
      return true;
    }
  }
  return false;
}

// The bidirectional embedding, override and isolate controls U+202A..U+202E and
// U+2066..U+2069: they reorder how the text around them is displayed, so a name holding one
// reads differently from what it is. (The plain marks U+200E/U+200F stay allowed: right-to-left
// text needs them.)
bool HasBidiControl(absl::string_view text) {
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    if (static_cast<unsigned char>(text[i]) != 0xe2) continue;
    const auto second = static_cast<unsigned char>(text[i + 1]);
    const auto third = static_cast<unsigned char>(text[i + 2]);
    if (second == 0x80 && third >= 0xaa && third <= 0xae) return true;
    if (second == 0x81 && third >= 0xa6 && third <= 0xa9) return true;
  }
  return false;
}

constexpr absl::string_view kBidiProblem =
    " must not contain bidirectional control characters (U+202A..U+202E, U+2066..U+2069: "
    "they make the text display as something else), got ";

absl::string_view WireTypeName(google::protobuf::UnknownField::Type type) {
  switch (type) {
    case google::protobuf::UnknownField::TYPE_VARINT: return "a varint";
    case google::protobuf::UnknownField::TYPE_FIXED32: return "a fixed32";
    case google::protobuf::UnknownField::TYPE_FIXED64: return "a fixed64";
    case google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED: return "length-delimited bytes";
    case google::protobuf::UnknownField::TYPE_GROUP: return "a group";
  }
  return "an unknown wire type";
}

}  // namespace

bool IsUuid(absl::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    const char c = text[i];
    const bool lower_hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (dash_position ? c != '-' : !lower_hex) return false;
  }
  return true;
}

int CharacterCount(absl::string_view text) {
  int count = 0;
  for (char c : text) {
    // Count every byte that does not continue a multi-byte sequence (10xxxxxx).
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++count;
  }
  return count;
}

std::string Quote(absl::string_view value) {
  if (value.size() <= kQuoteLimit) return absl::StrCat("\"", absl::CEscape(value), "\"");
  return absl::StrCat("\"", absl::CEscape(value.substr(0, kQuoteLimit)), "...\" (", value.size(),
                      " bytes)");
}

void CheckRequiredUuid(FieldViolations& violations, absl::string_view field,
                       absl::string_view value, absl::string_view what) {
  if (value.empty()) {
    violations.Add(field, absl::StrCat(field, " is required: the UUID of ", what, " (e.g. ",
                                       kUuidExample, ")"));
    return;
  }
  CheckOptionalUuid(violations, field, value);
}

void CheckOptionalUuid(FieldViolations& violations, absl::string_view field,
                       absl::string_view value) {
  if (value.empty() || IsUuid(value)) return;
  violations.Add(field, NotAUuid(field, value));
}

void CheckOrg(FieldViolations& violations, absl::string_view field, absl::string_view org) {
  if (org.empty()) {
    violations.Add(field, absl::StrCat(field,
                                       " is required: the organisation the request acts "
                                       "for (the {org} of /v2/org/{org}/...)"));
    return;
  }
  if (CharacterCount(org) > kMaxOrgLength) {
    violations.Add(field, absl::StrCat(field, " must be at most ", kMaxOrgLength,
                                       " characters, got ", CharacterCount(org)));
    return;
  }
  bool has_space = false;
  for (char c : org) has_space = has_space || absl::ascii_isspace(c);
  if (has_space || HasControlCharacter(org)) {
    violations.Add(field, absl::StrCat(field,
                                       " must not contain whitespace or control "
                                       "characters, got ",
                                       Quote(org)));
  } else if (HasBidiControl(org)) {
    violations.Add(field, absl::StrCat(field, kBidiProblem, Quote(org)));
  }
}

void CheckName(FieldViolations& violations, absl::string_view field, absl::string_view name,
               int min_length, int max_length, bool required) {
  if (name.empty()) {
    if (required) {
      violations.Add(field, absl::StrCat(field, " is required: between ", min_length, " and ",
                                         max_length, " characters"));
    }
    return;
  }
  const int length = CharacterCount(name);
  if (length < min_length || length > max_length) {
    violations.Add(field, absl::StrCat(field, " must be between ", min_length, " and ", max_length,
                                       " characters long, got ", length, " (", Quote(name), ")"));
    return;
  }
  if (absl::ascii_isspace(name.front()) || absl::ascii_isspace(name.back())) {
    violations.Add(
        field, absl::StrCat(field, " must not begin or end with whitespace, got ", Quote(name)));
    return;
  }
  if (HasControlCharacter(name)) {
    violations.Add(field, absl::StrCat(field,
                                       " must not contain control characters "
                                       "(tabs, newlines, ...), got ",
                                       Quote(name)));
  } else if (HasBidiControl(name)) {
    violations.Add(field, absl::StrCat(field, kBidiProblem, Quote(name)));
  }
}

void CheckMaxLength(FieldViolations& violations, absl::string_view field, absl::string_view value,
                    int max_length) {
  const int length = CharacterCount(value);
  if (length > max_length) {
    violations.Add(field, absl::StrCat(field, " must be at most ", max_length,
                                       " characters long, got ", length));
  }
}

void CheckLabels(FieldViolations& violations, absl::string_view field,
                 const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.size() > static_cast<size_t>(kMaxLabels)) {
    violations.Add(field, absl::StrCat(field, " may hold at most ", kMaxLabels, " labels, got ",
                                       labels.size()));
  }
  // protobuf's Map iterates in an unspecified order: sort so messages are deterministic.
  const std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  for (const auto& [key, value] : sorted) {
    const std::string path = MapKey(field, key);
    const int key_length = CharacterCount(key);
    if (key_length < 1 || key_length > kMaxLabelKeyLength) {
      violations.Add(path, absl::StrCat("label keys must be between 1 and ", kMaxLabelKeyLength,
                                        " characters long, got ", key_length, " in ", path));
    }
    const int value_length = CharacterCount(value);
    if (value_length > kMaxLabelValueLength) {
      violations.Add(path, absl::StrCat("label values must be at most ", kMaxLabelValueLength,
                                        " characters long, got ", value_length, " in ", path));
    }
    if (HasControlCharacter(key) || HasControlCharacter(value)) {
      violations.Add(path, absl::StrCat("labels must not contain control characters (NUL, "
                                        "tabs, newlines, ...), got one in ", path));
    } else if (HasBidiControl(key) || HasBidiControl(value)) {
      violations.Add(path, absl::StrCat("labels", kBidiProblem, "one in ", path));
    }
  }
}

void CheckUuidList(FieldViolations& violations, absl::string_view field,
                   const google::protobuf::RepeatedPtrField<std::string>& ids,
                   absl::string_view forbidden, absl::string_view forbidden_what) {
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < ids.size(); ++i) {
    const std::string path = Index(field, i);
    const std::string& id = ids[i];
    if (!IsUuid(id)) {
      violations.Add(path, NotAUuid(path, id));
      continue;
    }
    if (!seen.insert(id).second) {
      violations.Add(path, absl::StrCat(field, " must not repeat an id: ", path, " ", Quote(id),
                                        " appears earlier in the list"));
      continue;
    }
    if (!forbidden.empty() && absl::EqualsIgnoreCase(id, forbidden)) {
      violations.Add(path, absl::StrCat(field, " must not include ", forbidden_what, " ", Quote(id),
                                        ", found at ", path));
    }
  }
}

void CheckRequestId(FieldViolations& violations, absl::string_view field,
                    absl::string_view request_id) {
  if (request_id.size() > static_cast<size_t>(kMaxRequestIdLength)) {
    violations.Add(field, absl::StrCat(field, " must be at most ", kMaxRequestIdLength,
                                       " characters long, got ", request_id.size()));
    return;
  }
  for (char c : request_id) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e) {
      violations.Add(field, absl::StrCat(field, " must be printable ASCII (e.g. a UUID), got ",
                                         Quote(request_id)));
      return;
    }
  }
}

void CheckPageSize(FieldViolations& violations, absl::string_view field, int page_size) {
  if (page_size < 0 || page_size > kMaxPageSize) {
    violations.Add(field, absl::StrCat(field, " must be between 0 and ", kMaxPageSize,
                                       " (0 means the default of 100), got ", page_size));
  }
}

void CheckWireTypes(FieldViolations& violations, absl::string_view prefix,
                    const google::protobuf::Message& message) {
  const google::protobuf::Reflection* reflection = message.GetReflection();
  const google::protobuf::Descriptor* descriptor = message.GetDescriptor();
  const google::protobuf::UnknownFieldSet& unknown = reflection->GetUnknownFields(message);
  for (int i = 0; i < unknown.field_count(); ++i) {
    const google::protobuf::UnknownField& field = unknown.field(i);
    const google::protobuf::FieldDescriptor* known = descriptor->FindFieldByNumber(field.number());
    if (known == nullptr) continue;  // a newer client's field: protobuf ignores it, so do we
    const std::string path = Child(prefix, known->name());
    if (violations.Has(path)) continue;
    violations.Add(path, absl::StrCat(path, " was sent as ", WireTypeName(field.type()),
                                      " (wire type), but it is ",
                                      known->is_repeated() ? "a repeated " : "a ",
                                      known->type_name(),
                                      " field: the client's copy of the .proto does not match "
                                      "nvlsched.v1 (field number ",
                                      field.number(), ")"));
  }
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE ||
        field->is_map()) {
      continue;
    }
    const std::string path = Child(prefix, field->name());
    if (!field->is_repeated()) {
      CheckWireTypes(violations, path, reflection->GetMessage(message, field));
      continue;
    }
    for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
      CheckWireTypes(violations, Index(path, i), reflection->GetRepeatedMessage(message, field, i));
    }
  }
}

}  // namespace nvlsched::daemon
