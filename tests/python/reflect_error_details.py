"""The `google.rpc` error details through reflection, as grpcurl uses them.

A refused call carries a `google.rpc.Status` in its `grpc-status-details-bin` trailer, whose
details are `Any`s (`ErrorInfo`, `RetryInfo`). A client without local copies of the googleapis
files can decode them only if the server's reflection resolves those symbols and their imports.
Run by `tests/python_client.rs`, apart from the account client's tests (the file name keeps
pytest from collecting it with them).
"""

import os

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

TARGET = os.environ.get("ROSETTA_GRPC", "127.0.0.1:50051")


@pytest.fixture(scope="module")
def channel():
    with grpc.insecure_channel(TARGET) as ch:
        grpc.channel_ready_future(ch).result(timeout=30)
        yield ch


def pool_with(channel, *symbols):
    """A descriptor pool of the files defining `symbols` and everything they import, fetched
    by reflection only."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    def ask(**request):
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10)
        return list(replies)

    files = {}
    pending = [("symbol", s) for s in symbols]
    while pending:
        kind, name = pending.pop()
        replies = ask(file_containing_symbol=name) if kind == "symbol" else ask(file_by_filename=name)
        for reply in replies:
            assert not reply.HasField("error_response"), f"{name}: {reply.error_response}"
            for raw in reply.file_descriptor_response.file_descriptor_proto:
                proto = FileDescriptorProto.FromString(raw)
                files[proto.name] = proto
        pending += [("file", dep) for p in list(files.values()) for dep in p.dependency if dep not in files]

    pool = descriptor_pool.DescriptorPool()
    added = set()
    while len(added) < len(files):
        ready = [p for n, p in files.items() if n not in added and all(d in added for d in p.dependency)]
        assert ready, f"unresolvable dependencies among {sorted(files)}"
        for proto in ready:
            pool.Add(proto)
            added.add(proto.name)
    return pool


def test_error_details_resolve_by_symbol(channel):
    pool = pool_with(channel, "google.rpc.ErrorInfo", "google.rpc.RetryInfo", "google.rpc.Status")
    info = pool.FindMessageTypeByName("google.rpc.ErrorInfo")
    assert info.file.name == "google/rpc/error_details.proto"
    assert {"reason", "domain", "metadata"} <= set(info.fields_by_name)
    retry = pool.FindMessageTypeByName("google.rpc.RetryInfo")
    assert retry.fields_by_name["retry_delay"].message_type.full_name == "google.protobuf.Duration"
    status = pool.FindMessageTypeByName("google.rpc.Status")
    assert status.fields_by_name["details"].message_type.full_name == "google.protobuf.Any"


def test_a_refused_call_decodes_to_error_info(channel):
    pool = pool_with(channel, "google.rpc.ErrorInfo", "google.rpc.Status")
    # An empty LoginRequest (no identifier): refused, with the reason as an ErrorInfo.
    login = channel.unary_unary(
        "/rosetta.account.v1.AccountService/Login",
        request_serializer=lambda raw: raw,
        response_deserializer=lambda raw: raw,
    )
    with pytest.raises(grpc.RpcError) as refused:
        login(b"", timeout=10)
    trailers = dict(refused.value.trailing_metadata())
    assert "grpc-status-details-bin" in trailers, trailers
    status_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))
    status = status_cls.FromString(trailers["grpc-status-details-bin"])
    assert status.code == refused.value.code().value[0]
    infos = [d for d in status.details if d.type_url.endswith("/google.rpc.ErrorInfo")]
    assert infos, [d.type_url for d in status.details]
    info_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.ErrorInfo"))
    info = info_cls.FromString(infos[0].value)
    assert info.domain == "rosetta"
    assert info.reason
