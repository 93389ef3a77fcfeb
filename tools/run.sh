#!/usr/bin/env bash
# Builds (if needed) and runs nvlschedd in the foreground on its embedded default: gRPC on
# 127.0.0.1:50051, database var/nvlsched.db, seeded with the demo fleet (8 NVL72 domains,
# 144 machines x 4 GPUs) when the database holds no machines. Extra args go to nvlschedd.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh --target nvlschedd >/dev/null
mkdir -p var
cat >&2 <<'MSG'
nvlschedd: talk to it with grpcurl (plaintext, server reflection), for example:
  grpcurl -plaintext 127.0.0.1:50051 list
  grpcurl -plaintext 127.0.0.1:50051 grpc.health.v1.Health/Check
  grpcurl -plaintext 127.0.0.1:50051 nvlsched.v1.InventoryService/ListDomains
  grpcurl -plaintext 127.0.0.1:50051 nvlsched.v1.CapacityService/ListOffers
Stop it with Ctrl-C (SIGINT) or SIGTERM.
MSG
exec build/bin/nvlschedd --db=var/nvlsched.db --seed_fleet=demo "$@"
