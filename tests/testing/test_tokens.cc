#include "tests/testing/test_tokens.h"

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstdio>
#include <cstdlib>

namespace nvlsched::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "test_tokens: %s failed\n", what);
  std::abort();
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

RsaKeyPair MakeRsaKeyPair() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  if (key == nullptr) Die("EVP_RSA_gen");
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    Die("PEM_write_bio_PrivateKey");
  }
  if (PEM_write_bio_PUBKEY(pub, key) != 1) Die("PEM_write_bio_PUBKEY");
  RsaKeyPair pair{BioString(priv), BioString(pub)};
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return pair;
}

std::string SignJwt(absl::string_view algorithm, absl::string_view key,
                    absl::string_view claims_json) {
  jwt_t* jwt = nullptr;
  if (jwt_new(&jwt) != 0) Die("jwt_new");
  if (jwt_add_grants_json(jwt, std::string(claims_json).c_str()) != 0) Die("jwt_add_grants_json");
  jwt_alg_t alg = jwt_str_alg(std::string(algorithm).c_str());
  if (alg == JWT_ALG_INVAL) Die("jwt_str_alg");
  const std::string key_copy(key);
  if (jwt_set_alg(jwt, alg,
                  alg == JWT_ALG_NONE ? nullptr
                                      : reinterpret_cast<const unsigned char*>(key_copy.data()),
                  alg == JWT_ALG_NONE ? 0 : static_cast<int>(key_copy.size())) != 0) {
    Die("jwt_set_alg");
  }
  char* encoded = jwt_encode_str(jwt);
  if (encoded == nullptr) Die("jwt_encode_str");
  std::string token(encoded);
  std::free(encoded);
  jwt_free(jwt);
  return token;
}

}  // namespace nvlsched::testing
