#!/usr/bin/env bash
# Regenerates the TLS test material (a CA, a server certificate for 127.0.0.1/localhost, a
# client certificate, and a second CA that signed nothing we trust). Test-only keys: never use
# them anywhere else. Valid for 100 years so tests do not start failing on a date.
set -euo pipefail
cd "$(dirname "$0")"
days=36500
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days \
  -subj "/CN=nvlsched test CA" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout other_ca.key -out other_ca.pem -days $days \
  -subj "/CN=nvlsched untrusted CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
  -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
  -days $days -extfile server.ext 2>/dev/null
for who in client:ca other_client:other_ca; do
  name=${who%%:*}; signer=${who##*:}
  openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr \
    -subj "/CN=nvlsched test $name" 2>/dev/null
  openssl x509 -req -in $name.csr -CA $signer.pem -CAkey $signer.key -CAcreateserial \
    -out $name.pem -days $days 2>/dev/null
done
rm -f ./*.csr ./*.srl server.ext ca.key other_ca.key
