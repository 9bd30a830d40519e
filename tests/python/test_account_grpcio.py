"""An independent client: Python grpcio, with no generated code and no proto files.

Everything it knows about the API it learns from the server's reflection service, so it checks
that a stock gRPC toolchain can use Rosetta as the README says.
"""

import os
import uuid

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

TARGET = os.environ.get("ROSETTA_GRPC", "127.0.0.1:50051")
ACCOUNT = "rosetta.account.v1.AccountService"


@pytest.fixture(scope="module")
def channel():
    with grpc.insecure_channel(TARGET) as ch:
        grpc.channel_ready_future(ch).result(timeout=30)
        yield ch


def reflect(channel):
    """Every service the server lists, and a descriptor pool holding the account API."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    def ask(**request):
        return list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**request)]), timeout=10))

    services = [s.name for r in ask(list_services="") for s in r.list_services_response.service]
    files = {}
    pending = [("symbol", ACCOUNT)]
    while pending:
        kind, name = pending.pop()
        responses = ask(file_containing_symbol=name) if kind == "symbol" else ask(file_by_filename=name)
        for response in responses:
            assert not response.HasField("error_response"), response.error_response
            for raw in response.file_descriptor_response.file_descriptor_proto:
                proto = FileDescriptorProto.FromString(raw)
                files[proto.name] = proto
        pending += [("file", dep) for proto in list(files.values()) for dep in proto.dependency if dep not in files]

    pool = descriptor_pool.DescriptorPool()
    added = set()
    while len(added) < len(files):
        ready = [p for n, p in files.items() if n not in added and all(d in added for d in p.dependency)]
        assert ready, f"unresolvable dependencies among {sorted(files)}"
        for proto in ready:
            pool.Add(proto)
            added.add(proto.name)
    return services, pool


def method(channel, pool, name):
    service = pool.FindServiceByName(ACCOUNT)
    m = service.methods_by_name[name]
    request_cls = message_factory.GetMessageClass(m.input_type)
    response_cls = message_factory.GetMessageClass(m.output_type)
    call = channel.unary_unary(
        f"/{ACCOUNT}/{name}",
        request_serializer=lambda msg: msg.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    return request_cls, call


def test_health_is_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=ACCOUNT))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_all_four_services(channel):
    services, _ = reflect(channel)
    for name in ("account", "social", "messaging", "files"):
        assert any(s.startswith(f"rosetta.{name}.v1.") for s in services), services


def test_register_login_and_call_with_token(channel):
    _, pool = reflect(channel)
    name = "py" + uuid.uuid4().hex[:10]

    Register, register = method(channel, pool, "Register")
    user = register(Register(username=name, password="from-python", nickname="Py")).user
    assert user.username == name and user.id >= 100

    Login, login = method(channel, pool, "Login")
    session = login(Login(username=name, password="from-python"))
    assert session.access_token.count(".") == 2

    with pytest.raises(grpc.RpcError) as wrong:
        login(Login(username=name, password="not-it"))
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED

    Me, me = method(channel, pool, "GetMyProfile")
    profile = me(Me(), metadata=[("authorization", f"Bearer {session.access_token}")])
    assert profile.id == user.id and profile.nickname == "Py"

    with pytest.raises(grpc.RpcError) as anonymous:
        me(Me())
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
