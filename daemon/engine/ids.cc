#include "daemon/engine/ids.h"

#include <algorithm>
#include <cstdint>

#include "absl/random/distributions.h"

namespace nvlsched::daemon {

namespace {

std::string Format(const uint8_t (&bytes)[16]) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0x0f]);
  }
  return out;
}

}  // namespace

std::string NewUuid(absl::BitGenRef gen) {
  uint8_t bytes[16];
  for (uint8_t& b : bytes) b = absl::Uniform<uint8_t>(gen);
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);  // version 4
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // variant 1
  return Format(bytes);
}

std::string NewTimeOrderedUuid(absl::Time now, absl::BitGenRef gen) {
  uint8_t bytes[16];
  for (uint8_t& b : bytes) b = absl::Uniform<uint8_t>(gen);
  const uint64_t millis = static_cast<uint64_t>(std::max<int64_t>(absl::ToUnixMillis(now), 0));
  for (int i = 0; i < 6; ++i) bytes[i] = static_cast<uint8_t>(millis >> (8 * (5 - i)));
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x70);  // version 7
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);  // variant 1
  return Format(bytes);
}

std::string RandomNameSuffix(absl::BitGenRef gen, int n) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string out(n, ' ');
  for (char& c : out) c = kAlphabet[absl::Uniform<int>(gen, 0, 36)];
  return out;
}

}  // namespace nvlsched::daemon
