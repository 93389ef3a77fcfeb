#!/usr/bin/python3
"""nvlsched_call: call one nvlsched gRPC method with a JSON body and print the JSON answer.

The same protobuf JSON mapping grpcurl uses (camelCase names, defaults omitted), for machines
without grpcurl (Debian 12 does not package it). Uses Debian's python3-grpcio and
python3-protobuf, and protoc to compile the repository's .proto files on the fly.

  tools/nvlsched_call.py [--addr 127.0.0.1:50051] [--token T] [--cacert CA [--cert C --key K]]
                        SERVICE/METHOD [JSON | @file | -]
  tools/nvlsched_call.py nvlsched.v1.EventService/WatchEvents '{"afterSequence": 0}'
                                               (a streaming method: every message as it comes,
                                                until Ctrl-C; --oneline: "sequence type reason")
  tools/nvlsched_call.py list                  (services, through server reflection)
  tools/nvlsched_call.py describe SYMBOL       (a service's methods, through server reflection)

Errors print the status code, the message and the google.rpc details, and exit 1.
"""
import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_ROOTS = [os.path.join(ROOT, "proto"), "/usr/share/grpc-proto",
               "/usr/share/gocode/src/github.com/gogo/googleapis", "/usr/include"]
PROTOS = ["nvlsched/v1/resources.proto", "nvlsched/v1/instance_service.proto",
          "nvlsched/v1/inventory_service.proto", "nvlsched/v1/capacity_service.proto",
          "nvlsched/v1/admin_service.proto", "nvlsched/v1/event_service.proto",
          "grpc/health/v1/health.proto",
          "google/rpc/status.proto", "google/rpc/code.proto", "google/rpc/error_details.proto",
          "grpc/reflection/v1alpha/reflection.proto"]


def compile_protos():
    out = tempfile.mkdtemp(prefix="nvlsched_call_")
    args = ["protoc"] + ["-I" + r for r in PROTO_ROOTS] + ["--python_out=" + out] + PROTOS
    subprocess.run(args, check=True)
    sys.path.insert(0, out)
    for p in PROTOS:
        load_module(out, p[:-len(".proto")])
    return out


def load_module(out, stem):
    if stem.startswith("grpc/"):
        # "grpc" is grpcio's package: load these modules from their files instead.
        name = stem.replace("/", "_") + "_pb2"
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, os.path.join(out, stem + "_pb2.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
        return module
    return importlib.import_module(stem.replace("/", ".") + "_pb2")


def make_channel(args):
    """Plaintext, or TLS when --cacert is given (mutual TLS with --cert and --key)."""
    import grpc
    if not args.cacert:
        return grpc.insecure_channel(args.addr)
    def read(path):
        with open(path, "rb") as f:
            return f.read()
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.cacert),
        private_key=read(args.key) if args.key else None,
        certificate_chain=read(args.cert) if args.cert else None)
    return grpc.secure_channel(args.addr, creds)


def reflect(args, out, request_fields):
    """One ServerReflectionInfo exchange; returns the response message."""
    refl = load_module(out, "grpc/reflection/v1alpha/reflection")
    channel = make_channel(args)
    call = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                 request_serializer=refl.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=refl.ServerReflectionResponse.FromString)
    responses = list(call(iter([refl.ServerReflectionRequest(**request_fields)]), timeout=30))
    resp = responses[0]
    if resp.HasField("error_response"):
        raise SystemExit(f"reflection error: {resp.error_response.error_message}")
    return resp


def describe(args, out, symbol):
    from google.protobuf import descriptor_pb2
    resp = reflect(args, out, {"file_containing_symbol": symbol})
    for raw in resp.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        for svc in fd.service:
            if f"{fd.package}.{svc.name}" != symbol:
                continue
            print(f"{symbol} is a service:")
            print(f"service {svc.name} {{")
            for m in svc.method:
                print(f"  rpc {m.name} ( {m.input_type.lstrip('.')} ) returns ( {m.output_type.lstrip('.')} );")
            print("}")
            return 0
    raise SystemExit(f"reflection found no service named {symbol}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--addr", default="127.0.0.1:50051")
    parser.add_argument("--token", default=os.environ.get("NVLSCHED_TOKEN", ""),
                        help="bearer token (default: $NVLSCHED_TOKEN)")
    parser.add_argument("--cacert", help="TLS: the CA that signed the server's certificate")
    parser.add_argument("--cert", help="mutual TLS: client certificate (PEM)")
    parser.add_argument("--key", help="mutual TLS: client private key (PEM)")
    parser.add_argument("--oneline", action="store_true",
                        help="streaming methods: one line per event (sequence, type, reason)")
    parser.add_argument("method", help="SERVICE/METHOD, e.g. nvlsched.v1.InventoryService/ListDomains, or 'list'")
    parser.add_argument("body", nargs="?", default="{}", help="JSON request, @file, or - for stdin")
    args = parser.parse_args()

    out = compile_protos()
    import grpc
    from google.protobuf import descriptor_pool, json_format, symbol_database
    from google.rpc import status_pb2, error_details_pb2  # noqa: F401  (registers detail types)

    pool = descriptor_pool.Default()
    if args.method == "list":
        resp = reflect(args, out, {"list_services": ""})
        for svc in sorted(s.name for s in resp.list_services_response.service):
            print(svc)
        return 0
    if args.method == "describe":
        return describe(args, out, args.body)

    service_name, method_name = args.method.rsplit("/", 1)
    method = pool.FindServiceByName(service_name).methods_by_name[method_name]
    db = symbol_database.Default()
    req_cls = db.GetPrototype(method.input_type)
    resp_cls = db.GetPrototype(method.output_type)

    body = args.body
    if body == "-":
        body = sys.stdin.read()
    elif body.startswith("@"):
        with open(body[1:]) as f:
            body = f.read()
    request = json_format.Parse(body, req_cls())

    channel = make_channel(args)
    metadata = [("authorization", "Bearer " + args.token)] if args.token else None
    try:
        if method.server_streaming:
            call = channel.unary_stream(f"/{service_name}/{method_name}",
                                        request_serializer=req_cls.SerializeToString,
                                        response_deserializer=resp_cls.FromString)
            for message in call(request, metadata=metadata):
                if args.oneline:
                    kind = message.DESCRIPTOR.fields_by_name["type"].enum_type.values_by_number[
                        message.type].name
                    print(f"{message.sequence} {kind} {message.reason}", flush=True)
                else:
                    print(json_format.MessageToJson(message, indent=2), flush=True)
            return 0
        call = channel.unary_unary(f"/{service_name}/{method_name}",
                                   request_serializer=req_cls.SerializeToString,
                                   response_deserializer=resp_cls.FromString)
        response = call(request, metadata=metadata, timeout=30)
    except KeyboardInterrupt:
        return 0
    except grpc.RpcError as err:
        print(f"ERROR:\n  Code: {err.code().name}\n  Message: {err.details()}", file=sys.stderr)
        for key, value in err.trailing_metadata() or []:
            if key == "grpc-status-details-bin":
                st = status_pb2.Status.FromString(value)
                for any_detail in st.details:
                    type_name = any_detail.type_url.split("/")[-1]
                    detail = db.GetSymbol(type_name)()
                    any_detail.Unpack(detail)
                    print(f"  Details: {type_name} " + json_format.MessageToJson(detail), file=sys.stderr)
        return 1
    print(json_format.MessageToJson(response, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
