#!/usr/bin/python3
"""End-to-end: the operator's view of the real nvlschedd, through tools/nvlsched_call.py (the
same protobuf JSON mapping and server reflection grpcurl uses):

  - reflection lists every service and describes grpc.health.v1.Health; Health/Check SERVING;
  - the NVIDIA seed API's two example BatchInstanceCreateRequest bodies, verbatim with "org"
    added, are accepted (tenant and instance types of those ids come from a fleet file);
  - a bad body comes back INVALID_ARGUMENT with one BadRequest violation per bad field;
  - a retry with the same requestId returns the first answer.

usage: api_walkthrough_test.py NVLSCHEDD_BINARY
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CALL = os.path.join(ROOT, "tools", "nvlsched_call.py")
DATA = os.path.join(HERE, "testdata")

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"[  OK  ] {name}")
    else:
        failed += 1
        print(f"[FAILED] {name}: {detail}")


def call(addr, method, body=None):
    args = [sys.executable, CALL, "--addr", addr, method] + ([body] if body is not None else [])
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def start_daemon(binary, work):
    port_file = os.path.join(work, "port")
    log = open(os.path.join(work, "daemon.log"), "w")
    proc = subprocess.Popen([binary, "--listen=127.0.0.1:0", f"--port_file={port_file}", "--metrics_listen=127.0.0.1:0",
                             f"--db={work}/nvlsched.db", f"--seed_fleet={DATA}/seed_fleet.json"],
                            stdout=log, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"nvlschedd exited early ({proc.returncode}): "
                             + open(os.path.join(work, "daemon.log")).read())
        if os.path.exists(port_file) and open(port_file).read().strip():
            return proc, "127.0.0.1:" + open(port_file).read().strip()
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("nvlschedd wrote no port file within 60 s")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        proc, addr = start_daemon(binary, work)
        try:
            rc, out, err = call(addr, "list")
            services = out.split()
            check("reflection lists every service", rc == 0 and all(s in services for s in [
                "grpc.health.v1.Health", "nvlsched.v1.InstanceService", "nvlsched.v1.InventoryService",
                "nvlsched.v1.CapacityService", "nvlsched.v1.AdminService"]), out + err)
            rc, out, err = call(addr, "describe", "grpc.health.v1.Health")
            check("reflection describes grpc.health.v1.Health", rc == 0 and "rpc Check" in out, out + err)
            rc, out, err = call(addr, "grpc.health.v1.Health/Check")
            check("health is SERVING", rc == 0 and json.loads(out).get("status") == "SERVING", out + err)

            strict_body = open(os.path.join(DATA, "seed_batch_1.json")).read()
            rc, out, err = call(addr, "nvlsched.v1.InstanceService/BatchCreateInstances", strict_body)
            ok = rc == 0
            if ok:
                resp = json.loads(out)
                inst = resp["instances"]
                ok = (len(inst) == 4 and len({i["nvlinkDomainId"] for i in inst}) == 1
                      and len({i["machineId"] for i in inst}) == 4
                      and all(re.fullmatch(r"gpu-worker-[a-z0-9]{6}", i["name"]) for i in inst)
                      and all(i["status"] == "INSTANCE_STATUS_PENDING" for i in inst))
            check("seed example 1 (topology-optimized, InfiniBand, NVLink) accepted verbatim", ok, out + err)

            spread_body = open(os.path.join(DATA, "seed_batch_2.json")).read()
            rc, out, err = call(addr, "nvlsched.v1.InstanceService/BatchCreateInstances", spread_body)
            ok = rc == 0 and len(json.loads(out)["instances"]) == 8 if rc == 0 else False
            check("seed example 2 (topologyOptimized false, labels) accepted verbatim", ok, out + err)

            bad = json.loads(strict_body)
            bad.update({"count": 40, "namePrefix": " padded", "vpcId": "not-a-uuid"})
            rc, out, err = call(addr, "nvlsched.v1.InstanceService/BatchCreateInstances", json.dumps(bad))
            fields = re.findall(r'"field": "([^"]+)"', err)
            check("a bad body gets INVALID_ARGUMENT with one violation per field",
                  rc == 1 and "INVALID_ARGUMENT" in err and sorted(fields) == ["count", "name_prefix", "vpc_id"],
                  err)

            retry = json.loads(strict_body)
            retry["requestId"] = "walkthrough-1"
            first = call(addr, "nvlsched.v1.InstanceService/BatchCreateInstances", json.dumps(retry))
            second = call(addr, "nvlsched.v1.InstanceService/BatchCreateInstances", json.dumps(retry))
            check("a retry with the same requestId returns the first answer",
                  first[0] == 0 and first[1] == second[1], first[2] + second[2])
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
            check("SIGTERM exits 0", code == 0, f"exit code {code}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
