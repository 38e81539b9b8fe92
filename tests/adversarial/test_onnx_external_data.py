"""ONNX external data: a graph may not read files beside the server.

A tensor can keep its bytes outside the model ("external data": a location, an offset, a
length), and onnxruntime reads them relative to its working directory when the model comes
as bytes. A bundle with correct checksums could then answer the bytes of `.aws/credentials`
as its probabilities. Every such tensor, wherever it sits in the graph, is refused at load,
before onnxruntime sees the model; the check parses the protobuf itself, without `onnx`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from modelapi.bundle import Bundle
from modelapi.errors import BundleError
from modelapi.formats.onnx import refuse_external_data
from modelapi.predictor import Predictor
from tests.adversarial.test_hostile_models import _with_files
from tests.conftest import PIMA_COLUMNS

onnx = pytest.importorskip("onnx")
helper, TensorProto = onnx.helper, onnx.TensorProto

COLUMNS = PIMA_COLUMNS
SECRET = ".aws/credentials"
# What the secret file holds, read as two float32s: what a leaking graph would answer.
LEAKED = (0.25, 0.75)
REFUSED = r"^model\.onnx: a tensor refers to external data"


def _external(name: str, *, flag: bool = True, entries: bool = True) -> object:
    """A [1, 2] float tensor whose 8 bytes are in the secret file."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=[1, 2])
    if flag:
        tensor.data_location = TensorProto.EXTERNAL
    if entries:
        for key, value in (("location", SECRET), ("offset", "0"), ("length", "8")):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
    return tensor


def _model(nodes: list[object], initializers: list[object], **fields: object) -> bytes:
    """A graph with the Pima inputs whose `leaked` value becomes the probabilities."""
    inputs = [helper.make_tensor_value_info(c, TensorProto.FLOAT, [None, 1]) for c in COLUMNS]
    outputs = [
        helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2]),
    ]
    tail = [
        helper.make_node("Mul", ["Pregnancies", "zero"], ["z"]),
        helper.make_node("Add", ["z", "leaked"], ["probabilities"]),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph([*nodes, *tail], "g", inputs, outputs, [zero, *initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **fields)
    model.ir_version = 8
    data: bytes = model.SerializeToString()
    return data


def _in_if_branch() -> bytes:
    """The leak inside an If branch: onnxruntime's optimizer leaves it alone, so it runs."""
    then_branch = helper.make_graph(
        [helper.make_node("Identity", ["leak"], ["p"])],
        "then",
        [],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, [1, 2])],
        [_external("leak")],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Identity", ["half"], ["q"])],
        "else",
        [],
        [helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor("half", TensorProto.FLOAT, [1, 2], [0.5, 0.5])],
    )
    nodes = [
        helper.make_node("ReduceSum", ["Pregnancies"], ["sum"], keepdims=0),
        helper.make_node("Equal", ["sum", "zero"], ["is_zero"]),
        helper.make_node(
            "If", ["is_zero"], ["leaked"], then_branch=then_branch, else_branch=else_branch
        ),
    ]
    return _model(nodes, [])


def _identity(tensor: object) -> bytes:
    return _model([helper.make_node("Identity", ["leak"], ["leaked"])], [tensor])


def _constant() -> bytes:
    return _model([helper.make_node("Constant", [], ["leaked"], value=_external("v"))], [])


def _sparse() -> bytes:
    values = _external("values")
    indices = helper.make_tensor("indices", TensorProto.INT64, [2], [0, 1])
    sparse = helper.make_sparse_tensor(values, indices, [1, 2])
    return _model([helper.make_node("Constant", [], ["leaked"], sparse_value=sparse)], [])


def _in_function() -> bytes:
    body = [helper.make_node("Constant", [], ["out"], value=_external("v"))]
    function = helper.make_function(
        "local", "leak", [], ["out"], body, [helper.make_opsetid("", 17)]
    )
    nodes = [helper.make_node("leak", [], ["leaked"], domain="local")]
    return _model(nodes, [], functions=[function])


HOSTILE: dict[str, Callable[[], bytes]] = {
    "initializer in an If branch": _in_if_branch,
    "initializer": lambda: _identity(_external("leak")),
    "initializer, entries without the flag": lambda: _identity(_external("leak", flag=False)),
    "initializer, the flag without entries": lambda: _identity(_external("leak", entries=False)),
    "Constant node": _constant,
    "sparse Constant": _sparse,
    "function body": _in_function,
}


@pytest.fixture
def secret_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding a secret file, as a server's home would."""
    (tmp_path / ".aws").mkdir()
    (tmp_path / SECRET).write_bytes(struct.pack("<2f", *LEAKED))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_graph_with_external_data_is_refused_at_load(
    builtin_bundle: Bundle, secret_cwd: Path, case: str
) -> None:
    data = HOSTILE[case]()
    with pytest.raises(BundleError, match=REFUSED):
        refuse_external_data(data)
    bundle = _with_files(builtin_bundle, {"model.onnx": data}, serving="model.onnx")
    with pytest.raises(BundleError, match=REFUSED):
        Predictor(bundle)


def test_the_if_branch_graph_would_leak_the_file(secret_cwd: Path) -> None:
    # Proof that the refusal matters: onnxruntime itself runs this graph and answers the file.
    ort = pytest.importorskip("onnxruntime")
    np = pytest.importorskip("numpy")
    session = ort.InferenceSession(_in_if_branch(), providers=["CPUExecutionProvider"])
    feeds = {c: np.zeros((1, 1), dtype="float32") for c in COLUMNS}
    _, probabilities = session.run(None, feeds)
    assert tuple(probabilities[0].tolist()) == LEAKED


def test_a_self_contained_graph_passes_the_check(secret_cwd: Path) -> None:
    embedded = helper.make_tensor("leak", TensorProto.FLOAT, [1, 2], [0.5, 0.5])
    refuse_external_data(_identity(embedded))


@pytest.mark.parametrize(
    "data",
    [b"\x08", b"\x0a\x05ab", b"\x0b\x00", b"\x08" + b"\xff" * 11],
    ids=["cut varint", "length past the end", "a group", "overlong varint"],
)
def test_bytes_that_are_not_protobuf_are_refused(data: bytes) -> None:
    with pytest.raises(BundleError, match=r"^model\.onnx: not a loadable ONNX model"):
        refuse_external_data(data)
