"""`from_torch` on tiny models: op counts, hand-computed flops, scopes, bytes, errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from go_gym.graph import OpGraph  # noqa: E402
from go_gym.importers.torch import TraceError, from_torch  # noqa: E402
from go_gym.opkinds import OpKind  # noqa: E402

F32 = 4


class MLP(nn.Module):
    def __init__(self, d_in: int = 8, hidden: int = 16, d_out: int = 3) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(d_in, hidden), nn.Linear(hidden, hidden)])
        self.head = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.head(x)


def _mlp_graph(optimizer: str = "sgd", batch: int = 4) -> OpGraph:
    return from_torch(
        MLP(),
        torch.randn(batch, 8),
        F.cross_entropy,
        optimizer,
        name="mlp",
        targets=torch.randint(0, 3, (batch,)),
    )


def _ops(graph: OpGraph, kind: OpKind) -> np.ndarray:
    return np.flatnonzero(graph.op_kind == kind)


def _name(graph: OpGraph, i: int) -> str:
    return str(graph.op_names[i])


def test_mlp_op_counts_and_kinds() -> None:
    g = _mlp_graph()
    counts = {k: len(_ops(g, k)) for k in OpKind}
    assert counts[OpKind.PARAMETER] == 6  # 3 weights + 3 biases
    assert counts[OpKind.INPUT] == 2  # features + labels
    assert counts[OpKind.OPTIMIZER] == 6  # one update per parameter
    # forward: 3 addmm; backward: 2 mm per layer except no input gradient for the first
    assert counts[OpKind.MATMUL] == 3 + 5
    assert counts[OpKind.SOFTMAX] == 2 and counts[OpKind.LOSS] == 2
    # plumbing (t, view, detach, getitem) is folded away
    names = " ".join(g.op_names.tolist())
    for plumbing in ("detach", " t ", "view", "getitem"):
        assert plumbing not in f" {names} "
    assert g.name == "mlp"
    assert all(name.startswith(("t_", "view")) is False for name in g.op_names.tolist())


def test_linear_forward_flops_match_hand_count() -> None:
    batch, d_in, d_out = 4, 8, 16
    g = _mlp_graph(batch=batch)
    first = next(i for i in _ops(g, OpKind.MATMUL) if g.scope[i] == "layers.0")
    # 2 * B * in * out multiply-adds, plus B * out for the bias
    assert g.flops[first] == 2 * batch * d_in * d_out + batch * d_out
    # backward matmuls of layers.0: only the weight gradient (the input needs none): 2*B*in*out
    bwd = [i for i in _ops(g, OpKind.MATMUL) if g.scope[i] == "layers.0" and i != first]
    assert [g.flops[i] for i in bwd] == [2 * batch * d_in * d_out]


def test_conv_flops_match_hand_count() -> None:
    class Conv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    g = from_torch(Conv(), torch.randn(2, 3, 5, 5), lambda y: y.square().mean())
    fwd, bwd = _ops(g, OpKind.CONVOLUTION)
    # every output element: 3*3*3 multiply-adds; output 2 x 4 x 5 x 5
    out_elems = 2 * 4 * 5 * 5
    assert g.flops[fwd] == 2 * out_elems * 3 * 3 * 3
    # only the weight gradient is needed (the input is not trained): the same count again
    assert g.flops[bwd] == 2 * out_elems * 3 * 3 * 3
    assert g.bytes_written[fwd] == out_elems * F32
    assert g.bytes_read[fwd] == (2 * 3 * 5 * 5 + 4 * 3 * 3 * 3) * F32


def test_elementwise_reduction_and_optimizer_flops() -> None:
    g = _mlp_graph(batch=4)
    relu = next(i for i in _ops(g, OpKind.ELEMENTWISE) if _name(g, i) == "relu")
    assert g.flops[relu] == 4 * 16
    bias_grad = next(i for i in _ops(g, OpKind.REDUCTION) if g.scope[i] == "head")
    assert g.flops[bias_grad] == 4 * 3  # sums the (4, 3) output gradient
    updates = _ops(g, OpKind.OPTIMIZER)
    total = sum(p.numel() for p in MLP().parameters())
    assert g.flops[updates].sum() == 2 * total  # sgd: 2 FLOPs per parameter element
    ga = _mlp_graph("adam")
    assert ga.flops[_ops(ga, OpKind.OPTIMIZER)].sum() == 12 * total


def test_every_op_has_a_scope_and_layer_backward_and_optimizer_included() -> None:
    g = _mlp_graph()
    fwd = {str(s) for i, s in enumerate(g.scope) if g.op_kind[i] == OpKind.MATMUL}
    assert {"layers.0", "layers.1", "head"} <= fwd
    assert (g.layer >= 0).all()
    # backward ops: the weight-gradient matmul of each layer carries that layer's scope
    for scope, layer in (("layers.0", 0), ("layers.1", 1), ("head", 1)):
        mms = [i for i in _ops(g, OpKind.MATMUL) if g.scope[i] == scope]
        assert len(mms) >= 2, scope  # forward + backward
        assert set(g.layer[mms].tolist()) == {layer}
    # optimizer ops take the scope, layer and colocation group of their parameter
    for i in _ops(g, OpKind.OPTIMIZER):
        params = [p for p in g.predecessors(i) if g.op_kind[p] == OpKind.PARAMETER]
        assert len(params) == 1
        (p,) = params
        assert g.scope[i] == g.scope[p] and g.scope[i] != ""
        assert g.layer[i] == g.layer[p]
        assert g.colocation[i] == g.colocation[p] >= 0
    # the relu backward (threshold_backward) has the relu's scope
    tb = [i for i in range(g.n_ops) if _name(g, i).startswith("threshold_backward")]
    relus = [i for i in range(g.n_ops) if _name(g, i).startswith("relu")]
    assert sorted(str(g.scope[i]) for i in tb) == sorted(str(g.scope[i]) for i in relus)
    loss = [i for i in range(g.n_ops) if g.op_kind[i] == OpKind.LOSS]
    assert {str(g.scope[i]) for i in loss} == {"loss"}


def test_backward_scopes_in_a_nested_model() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(8)
            self.ff = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.tanh(self.ff(self.norm(x)))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 8)
            self.blocks = nn.ModuleList([Block(), Block(), Block()])

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            x = self.emb(t)
            for b in self.blocks:
                x = b(x)
            return x

    g = from_torch(Net(), torch.randint(0, 10, (2, 5)), lambda y: y.sum())
    norms = _ops(g, OpKind.NORMALIZATION)
    assert len(norms) == 6  # forward and backward of each block's layer norm
    assert sorted(str(g.scope[i]) for i in norms) == sorted(
        [f"blocks.{k}.norm" for k in range(3)] * 2
    )
    for i in norms:
        assert g.layer[i] == int(str(g.scope[i]).split(".")[1])
    emb = _ops(g, OpKind.EMBEDDING)
    assert {str(g.scope[i]) for i in emb} == {"emb"} and len(emb) == 2
    assert set(g.layer[emb].tolist()) == {0}  # the embedding sits with the first block


def test_edges_carry_the_bytes_of_the_moved_tensor() -> None:
    g = _mlp_graph(batch=4)
    assert g.n_edges > 0
    for e in range(g.n_edges):
        src = int(g.edge_src[e])
        if g.op_kind[src] in (OpKind.PARAMETER, OpKind.INPUT):
            continue
        # single-output producers: the edge carries exactly what the producer wrote
        if _name(g, src).startswith(("addmm", "relu", "mm", "sum")):
            assert g.edge_bytes[e] == g.bytes_written[src], _name(g, src)
    # a parameter's edges carry the whole weight, even through the transpose view
    w = g.op_index("layers.0.weight")
    out = g.edge_bytes[g.edge_src == w]
    assert (out == 16 * 8 * F32).all() and out.size >= 2  # forward matmul and update
    # no duplicated edges from x * x style double use
    key = set(zip(g.edge_src.tolist(), g.edge_dst.tolist(), g.edge_tensor.tolist(), strict=True))
    assert len(key) == g.n_edges


def test_square_uses_one_edge() -> None:
    class Sq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x)
            return y * y

    g = from_torch(Sq(), torch.randn(3, 4), lambda y: y.sum())
    mul = next(i for i in range(g.n_ops) if _name(g, i) == "mul")
    preds = g.predecessors(mul).tolist()
    assert len(preds) == 1 and g.op_kind[preds[0]] == OpKind.MATMUL
    assert g.bytes_read[mul] == 3 * 4 * F32  # the tensor is read once


def test_persistent_bytes_sgd_vs_adam() -> None:
    n_param = sum(p.numel() for p in MLP().parameters())
    sgd, adam = _mlp_graph("sgd"), _mlp_graph("adam")
    assert sgd.persistent_bytes.sum() == 2 * n_param * F32  # weights + gradients
    assert adam.persistent_bytes.sum() == 4 * n_param * F32  # + two moments
    assert (sgd.persistent_bytes[sgd.op_kind != OpKind.PARAMETER] == 0).all()
    # adam state is folded into the parameter op: no extra placeholders or edges
    assert sgd.n_ops == adam.n_ops and sgd.n_edges == adam.n_edges


def test_multi_output_ops_map_to_tensor_indices() -> None:
    class BN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 1)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.bn(self.conv(x)))

    g = from_torch(BN(), torch.randn(2, 2, 3, 3), lambda y: y.mean())
    bn_fwd = next(i for i in _ops(g, OpKind.NORMALIZATION) if "backward" not in _name(g, i))
    out_tensors = {int(t) for t in g.edge_tensor[g.edge_src == bn_fwd]}
    assert 0 in out_tensors and len(out_tensors) >= 2  # output and saved statistics
    running = g.op_index("bn.running_mean")
    assert g.op_kind[running] == OpKind.CONSTANT and g.persistent_bytes[running] == 4 * F32


def test_model_is_left_unchanged() -> None:
    model = MLP()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    _ = from_torch(model, torch.randn(2, 8), lambda y: y.sum())
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_meta_device_model_traces() -> None:
    with torch.device("meta"):
        model = MLP()
        x = torch.empty(4, 8)
    g = from_torch(model, x, lambda y: y.sum(), "adam")
    assert g.n_ops == from_torch(MLP(), torch.randn(4, 8), lambda y: y.sum(), "adam").n_ops


class _Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent Python control flow
            return x * 2
        return x


class _Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.gate = _Gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.fc(x))


def test_data_dependent_control_flow_names_the_module() -> None:
    with pytest.raises(TraceError, match=r"data-dependent control flow in module 'gate' \(_Gate\)"):
        from_torch(_Gated(), torch.randn(2, 4), lambda y: y.sum())


def test_data_dependent_shape_names_the_module() -> None:
    class Mask(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.fc(x)
            return y[y > 0]

    with pytest.raises(TraceError, match="depends on tensor values"):
        from_torch(Mask(), torch.randn(2, 4), lambda y: y.sum())


def test_bad_arguments() -> None:
    with pytest.raises(TraceError, match="unknown optimizer"):
        from_torch(MLP(), torch.randn(2, 8), lambda y: y.sum(), "lamb")  # type: ignore[arg-type]
    with pytest.raises(TraceError, match="scalar"):
        from_torch(MLP(), torch.randn(2, 8), lambda y: y)
    frozen = MLP().requires_grad_(False)
    with pytest.raises(TraceError, match="no trainable parameters"):
        from_torch(frozen, torch.randn(2, 8), lambda y: y.sum())


def test_imported_graph_runs_in_the_placement_env() -> None:
    gym = pytest.importorskip("gymnasium")
    import go_gym  # noqa: F401  (registers the envs)

    g = _mlp_graph()
    try:
        env = gym.make("GOPlacement-v0", graph=g, cluster="p100")
    except Exception as exc:  # the envs are written concurrently; skip until they exist
        pytest.skip(f"GOPlacement-v0 not available: {exc}")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert np.isfinite(reward) and isinstance(info, dict)
    env.close()
