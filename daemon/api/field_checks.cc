#include "daemon/api/field_checks.h"

#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace nvlsched::daemon {
namespace {

constexpr size_t kQuoteLimit = 64;

std::string NotAUuid(absl::string_view field, absl::string_view value) {
  return absl::StrCat(field, " must be a UUID of 8-4-4-4-12 hex digits (e.g. ", kUuidExample,
                      "), got ", Quote(value));
}

bool HasControlCharacter(absl::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return true;
  }
  return false;
}

}  // namespace

bool IsUuid(absl::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_position ? text[i] != '-' : !absl::ascii_isxdigit(text[i])) return false;
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
    // UUIDs compare case-insensitively: "ABC..." and "abc..." are the same id.
    if (!seen.insert(absl::AsciiStrToLower(id)).second) {
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

}  // namespace nvlsched::daemon
