#!/usr/bin/python3
"""Writes the seed corpora of the libFuzzer targets into tests/fuzz/corpus/<target>/.

Run from anywhere (needs protoc and Debian's python3-protobuf, hence /usr/bin/python3):
    tests/fuzz/make_corpus.py
The output is checked in; rerun after changing a request message or the seed bodies. Files
named regress_* (inputs that once crashed a target) are kept.
Sources: the seed API's example bodies (tests/daemon/seed_bodies.h, from
shared/seeds/000_*.txt), the e2e test data (tests/e2e/testdata/*.json), and one small body per
request message written here.
"""
import base64
import hashlib
import hmac
import json
import os
import random
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")

# The order of request_checks.cc's Kinds(): the bytes target's first byte.
KINDS = [
    "BatchCreateInstancesRequest", "CreateInstanceRequest", "GetInstanceRequest",
    "ListInstancesRequest", "UpdateInstanceStatusRequest", "DeleteInstanceRequest",
    "BatchDeleteInstancesRequest", "ApplyFleetRequest", "SetMachineStateRequest",
    "UpsertTenantRequest", "RemoveMachineRequest", "GetMachineRequest", "ListMachinesRequest",
    "ListDomainsRequest", "ListOffersRequest", "Fleet",
]

ID = "f97df110-f4de-492e-8849-4a6af68026b0"
TYPE = "41e36058-8403-4086-a9b8-39cb5bc9cb98"
MACHINE = "e1000000-0000-4000-8000-000000001000"
DOMAIN = "d1000000-0000-4000-8000-000000000001"

# One small body per message (besides the seed bodies and test data).
BODIES = [
    ("CreateInstanceRequest", {"org": "demo", "tenantId": ID, "instanceTypeId": TYPE,
                               "name": "slice-1", "gpuCount": 2, "maxPricePerHour": 50.0,
                               "siteId": "a1000000-0000-4000-8000-000000000001",
                               "labels": {"team": "ml"}}),
    ("CreateInstanceRequest", {"org": "demo", "tenantId": ID, "instanceTypeId": TYPE,
                               "name": "whole-1", "vpcId": ID,
                               "interfaces": [{"subnetId": ID, "isPhysical": True,
                                               "ipAddress": "10.0.0.7"}],
                               "nvLinkInterfaces": [{"deviceInstance": 3,
                                                     "nvLinkLogicalPartitionId": ID}]}),
    ("GetInstanceRequest", {"org": "demo", "id": ID}),
    ("ListInstancesRequest", {"org": "demo", "tenantId": ID, "pageSize": 2,
                              "pageToken": base64.urlsafe_b64encode(ID.encode()).decode().rstrip("="),
                              "labels": {"tier": "production"}}),
    ("UpdateInstanceStatusRequest", {"org": "demo", "id": ID, "status": "INSTANCE_STATUS_READY",
                                     "message": "booted"}),
    ("DeleteInstanceRequest", {"org": "demo", "id": ID, "machineHealthIssue": True}),
    ("BatchDeleteInstancesRequest", {"org": "demo", "ids": [ID, TYPE]}),
    ("SetMachineStateRequest", {"id": MACHINE, "state": "MACHINE_STATE_MAINTENANCE",
                                "reason": "fan replacement"}),
    ("UpsertTenantRequest", {"tenant": {"id": ID, "org": "demo", "name": "demo",
                                        "quotas": [{"instanceTypeId": TYPE, "maxMachines": "36"}]}}),
    ("RemoveMachineRequest", {"id": MACHINE}),
    ("GetMachineRequest", {"id": MACHINE}),
    ("ListMachinesRequest", {"domainId": DOMAIN, "state": "MACHINE_STATE_READY", "pageSize": 5}),
    ("ListDomainsRequest", {"siteId": "a1000000-0000-4000-8000-000000000001"}),
    ("ListOffersRequest", {"sort": "price"}),
]

# The auth fuzzer's fixed settings (auth_fuzzer.cc).
SECRET = b"nvlsched-fuzz-hs256-secret-of-32+bytes!"
ISSUER = "https://issuer.fuzz.example"


def compile_protos(out):
    protos = ["nvlsched/v1/resources.proto", "nvlsched/v1/instance_service.proto",
              "nvlsched/v1/inventory_service.proto", "nvlsched/v1/capacity_service.proto"]
    subprocess.check_call(["protoc", "-I" + os.path.join(ROOT, "proto"), "-I/usr/include",
                           "--python_out=" + out] + protos)
    sys.path.insert(0, out)
    from nvlsched.v1 import capacity_service_pb2, instance_service_pb2, inventory_service_pb2
    from nvlsched.v1 import resources_pb2
    classes = {}
    for module in (instance_service_pb2, inventory_service_pb2, capacity_service_pb2, resources_pb2):
        for name in KINDS:
            if hasattr(module, name):
                classes[name] = getattr(module, name)
    return classes


def write(target, name, data):
    directory = os.path.join(CORPUS, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign(header, claims):
    signing_input = b64url(header) + "." + b64url(claims)
    mac = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def main():
    from google.protobuf import json_format
    for target in ("request_json_fuzzer", "request_bytes_fuzzer", "fleet_file_fuzzer", "auth_fuzzer",
                   "list_instances_fuzzer", "allocator_ops_fuzzer"):
        # Inputs that once crashed a target (regress_*) stay: they are regression seeds.
        directory = os.path.join(CORPUS, target)
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            if not name.startswith("regress_"):
                os.remove(os.path.join(directory, name))

    with tempfile.TemporaryDirectory() as tmp:
        classes = compile_protos(tmp)
        with open(os.path.join(ROOT, "tests", "daemon", "seed_bodies.h")) as f:
            seed_bodies = re.findall(r'R"json\((.*?)\)json"', f.read(), re.S)
        bodies = [("BatchCreateInstancesRequest", "seed_000_example_%d.json" % i, body)
                  for i, body in enumerate(seed_bodies, 1)]
        for name in ("seed_batch_1.json", "seed_batch_2.json"):
            with open(os.path.join(ROOT, "tests", "e2e", "testdata", name)) as f:
                bodies.append(("BatchCreateInstancesRequest", "e2e_" + name, f.read()))
        with open(os.path.join(ROOT, "tests", "e2e", "testdata", "seed_fleet.json")) as f:
            fleet = f.read()
        small_fleet = json.loads(fleet)
        small_fleet["machines"] = small_fleet["machines"][:3]
        small_fleet["domains"] = small_fleet["domains"][:1]
        small_fleet["instanceTypes"] = small_fleet["instanceTypes"][:1]
        small_fleet = json.dumps(small_fleet, indent=1)
        bodies.append(("Fleet", "e2e_seed_fleet_small.json", small_fleet))
        bodies.append(("ApplyFleetRequest", "apply_seed_fleet_small.json",
                       json.dumps({"fleet": json.loads(small_fleet)})))
        for i, (kind, body) in enumerate(BODIES):
            bodies.append((kind, "%s_%d.json" % (kind, i), json.dumps(body, indent=1)))

        for kind, name, body in bodies:
            message = classes[kind]()
            json_format.Parse(body, message)  # every seed must parse as its message
            write("request_json_fuzzer", name, body)
            write("request_bytes_fuzzer", name.replace(".json", ".pb"),
                  bytes([KINDS.index(kind)]) + message.SerializeToString())

        write("fleet_file_fuzzer", "e2e_seed_fleet.json", fleet)
        write("fleet_file_fuzzer", "seed_fleet_small.json", small_fleet)

    # auth: mode byte, then the mode's bytes.
    now_plus = 1800000000
    claims = json.dumps({"iss": ISSUER, "aud": "nvlsched", "sub": "alice", "org": "acme",
                         "roles": ["FORGE_TENANT_ADMIN"], "exp": now_plus, "nbf": 1600000000})
    claims_list_aud = json.dumps({"iss": ISSUER, "aud": ["other", "nvlsched"], "sub": "ops",
                                  "roles": ["FORGE_PROVIDER_ADMIN", "FORGE_PROVIDER_VIEWER"],
                                  "exp": now_plus})
    header = json.dumps({"alg": "HS256", "typ": "JWT"})
    write("auth_fuzzer", "tokens_file", b"\x00" + (
        "# sha256 subject org roles\n"
        "33cc09ba35314d19e32ed9a5a30fca56eebbfab5faec7247fd0403cd26e155b5 alice acme "
        "FORGE_TENANT_ADMIN\n"
        "%s ops - FORGE_PROVIDER_ADMIN,FORGE_PROVIDER_VIEWER\n" % hashlib.sha256(b"ops").hexdigest()
    ).encode())
    write("auth_fuzzer", "raw_jwt_valid", b"\x01" + sign(header.encode(), claims.encode()).encode())
    write("auth_fuzzer", "raw_jwt_none_alg", b"\x01" + (b64url(b'{"alg":"none"}') + "." +
                                                      b64url(claims.encode()) + ".").encode())
    write("auth_fuzzer", "raw_token", b"\x01fuzz-token")
    write("auth_fuzzer", "claims_tenant", b"\x02" + claims.encode())
    write("auth_fuzzer", "claims_provider", b"\x02" + claims_list_aud.encode())
    write("auth_fuzzer", "header_and_claims", b"\x03" + b'{"alg":"HS512","typ":"JWT"}\n' +
          claims.encode())

    # list_instances: org, tenant, page size, token mode, token bytes (FuzzedDataProvider takes
    # the integers from the end of the input).
    rng = random.Random(21)
    for i in range(6):
        write("list_instances_fuzzer", "random_%d" % i, bytes(rng.randrange(256) for _ in range(24)))
    # allocator_ops: op streams.
    for i in range(8):
        write("allocator_ops_fuzzer", "random_%d" % i, bytes(rng.randrange(256) for _ in range(200)))


if __name__ == "__main__":
    main()
