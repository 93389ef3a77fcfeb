// Test-only credentials: an RSA key pair made at run time and JWTs signed with it (or with an
// HS256 secret), through libjwt and OpenSSL — the same libraries the daemon verifies with.
//
// Thread-safety: plain functions; RsaKeyPair is a value.
#ifndef NVLSCHED_TESTS_TESTING_TEST_TOKENS_H_
#define NVLSCHED_TESTS_TESTING_TEST_TOKENS_H_

#include <string>

#include "absl/strings/string_view.h"

namespace nvlsched::testing {

struct RsaKeyPair {
  std::string private_pem;  // PKCS#8 "-----BEGIN PRIVATE KEY-----"
  std::string public_pem;   // "-----BEGIN PUBLIC KEY-----"
};
// A fresh 2048-bit key pair. Aborts the test binary if OpenSSL fails.
RsaKeyPair MakeRsaKeyPair();

// Signs `claims_json` (a JSON object) with `algorithm` ("RS256", "HS256", "HS512", "none"...)
// and `key` (PEM private key or HMAC secret; ignored for "none"). Aborts on failure.
std::string SignJwt(absl::string_view algorithm, absl::string_view key,
                    absl::string_view claims_json);

}  // namespace nvlsched::testing

#endif  // NVLSCHED_TESTS_TESTING_TEST_TOKENS_H_
