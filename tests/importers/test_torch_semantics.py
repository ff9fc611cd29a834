"""`from_torch` on what real training code does: in-place writes into views, parameters read by
the loss or a checkpoint, submodule modes, grad mode, nested inputs, compiled modules, unused
parameters, ``.item()``."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.utils import checkpoint as cp  # noqa: E402

import go_gym.importers  # noqa: E402
from go_gym.graph import OpGraph  # noqa: E402
from go_gym.importers.torch import OPTIMIZERS, TraceError, from_torch  # noqa: E402
from go_gym.opkinds import OpKind  # noqa: E402

F32 = 4


def _sum(y: torch.Tensor) -> torch.Tensor:
    return y.sum()


def _preds(g: OpGraph, name: str) -> list[str]:
    return [str(g.op_names[p]) for p in g.predecessors(g.op_index(name))]


def _succs(g: OpGraph, name: str) -> list[str]:
    return [str(g.op_names[s]) for s in g.successors(g.op_index(name))]


def _names(g: OpGraph, kind: OpKind) -> list[str]:
    return [str(n) for n, k in zip(g.op_names, g.op_kind, strict=True) if k == kind]


# --- 1. in-place writes into views -------------------------------------------------------------
class _SliceWrites(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(2, 6)
        out[:, :3] = self.a(x)
        out[:, 3:] = self.b(x)
        return self.c(out)


def test_writes_into_slices_reach_the_reader() -> None:
    g = from_torch(_SliceWrites(), torch.randn(2, 4), _sum)
    # forward: new_zeros -> copy_ (a's rows) -> copy__1 (b's rows) -> c
    assert "copy__1" in _preds(g, "addmm_2") and "new_zeros" not in _preds(g, "addmm_2")
    assert set(_preds(g, "copy__1")) == {"copy_", "addmm_1"}
    assert set(_preds(g, "copy_")) == {"new_zeros", "addmm"}
    # the edge carries the whole buffer c reads (2 x 6), the copy writes only its half
    e = np.flatnonzero(
        (g.edge_src == g.op_index("copy__1")) & (g.edge_dst == g.op_index("addmm_2"))
    )
    assert g.edge_bytes[e].tolist() == [2 * 6 * F32]
    assert g.bytes_written[g.op_index("copy__1")] == 2 * 3 * F32
    # backward too: c's weight gradient reads the written buffer, not the zeros
    c_grad = [i for i in np.flatnonzero(g.op_kind == OpKind.MATMUL) if g.scope[i] == "c"]
    readers = {str(g.op_names[i]) for i in c_grad if "copy__1" in _preds(g, str(g.op_names[i]))}
    assert len(readers) == 2  # the forward addmm and the weight-gradient mm
    # every forward op feeds something (the writes used to be dead ends)
    for name in ("copy_", "copy__1", "addmm", "addmm_1"):
        assert _succs(g, name), name


def test_in_place_op_on_a_view_reaches_later_readers() -> None:
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.a(x) * 1.0
            h[:, 0].mul_(2.0)
            return self.b(h)

    g = from_torch(Scale(), torch.randn(2, 4), _sum)
    assert "mul_" in _preds(g, "addmm_1") and "mul" not in _preds(g, "addmm_1")
    assert "mul" in _preds(g, "mul_")
    b_mm = [str(g.op_names[i]) for i in np.flatnonzero(g.op_kind == OpKind.MATMUL)]
    b_mm = [n for n in b_mm if g.scope[g.op_index(n)] == "b"]
    assert sum("mul_" in _preds(g, n) for n in b_mm) == 2  # forward and weight gradient


def test_view_taken_before_an_in_place_write_sees_it() -> None:
    class Late(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.a(x) * 1.0
            v = h[:, :2]
            h.mul_(2.0)
            return self.b(v)

    g = from_torch(Late(), torch.randn(2, 4), _sum)
    assert "mul_" in _preds(g, "addmm_1")


# --- 2. parameters outside model(...) ----------------------------------------------------------
def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))


def test_loss_reading_model_parameters_uses_the_parameter_ops() -> None:
    m = _mlp()
    x, y = torch.randn(3, 4), torch.randint(0, 2, (3,))

    def l2(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, t) + 1e-4 * sum(p.pow(2).sum() for p in m.parameters())

    plain = from_torch(m, x, F.cross_entropy, targets=y)
    g = from_torch(m, x, l2, targets=y)
    assert g.persistent_bytes.sum() == plain.persistent_bytes.sum()
    assert not [n for n in g.op_names.tolist() if "constant" in n]
    assert _names(g, OpKind.CONSTANT) == _names(plain, OpKind.CONSTANT)
    for name in _names(g, OpKind.PARAMETER):
        # read by the forward and by the penalty in the loss
        assert "loss" in {str(g.scope[s]) for s in g.successors(g.op_index(name))}, name
    # the penalty's gradient reaches the update: more ops feed each weight's gradient
    assert len(_names(g, OpKind.OPTIMIZER)) == 4


def test_checkpoint_recomputation_uses_the_parameter_ops() -> None:
    class Ck(nn.Module):
        def __init__(self, checkpointed: bool, reentrant: bool = False) -> None:
            super().__init__()
            self.pre, self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)
            self.checkpointed, self.reentrant = checkpointed, reentrant

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.pre(x)
            if self.checkpointed:
                h = cp.checkpoint(self.a, h, use_reentrant=self.reentrant)
            else:
                h = self.a(h)
            return self.b(h)

    plain = from_torch(Ck(False), torch.randn(2, 4), _sum, "adam")
    g = from_torch(Ck(True), torch.randn(2, 4), _sum, "adam")
    assert g.persistent_bytes.sum() == plain.persistent_bytes.sum()
    assert not [n for n in g.op_names.tolist() if "constant" in n]
    # a.weight feeds the forward matmul and its recomputation in the backward pass
    consumers = [s for s in g.successors(g.op_index("a.weight")) if g.op_kind[s] == OpKind.MATMUL]
    assert len(consumers) >= 2
    with pytest.raises(TraceError, match="use_reentrant=False"):
        from_torch(Ck(True, reentrant=True), torch.randn(2, 4), _sum)


def test_parameter_captured_outside_the_model_is_an_error() -> None:
    m = _mlp()
    w = m[0].weight
    with pytest.raises(
        TraceError, match=r"parameter '0\.weight' is used through a tensor captured"
    ):
        from_torch(m, torch.randn(3, 4), lambda o: o.sum() + w.pow(2).sum())


def test_buffer_captured_outside_the_model_is_its_constant_op() -> None:
    m = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    captured = m[1].running_mean
    g = from_torch(m, torch.randn(3, 4), lambda o: (o - captured).sum())
    via_model = from_torch(m, torch.randn(3, 4), lambda o: (o - m[1].running_mean).sum())
    assert g == via_model
    assert g.persistent_bytes.sum() == via_model.persistent_bytes.sum()


# --- 3. modes ----------------------------------------------------------------------------------
def test_every_submodule_keeps_its_own_mode() -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 2))
    m.train()
    m[1].eval()  # a frozen batch norm in a training model
    before = [mod.training for mod in m.modules()]
    from_torch(m, torch.randn(2, 3, 8, 8), F.cross_entropy, targets=torch.randint(0, 2, (2,)))
    assert [mod.training for mod in m.modules()] == before
    with pytest.raises(TraceError):  # and after a failed trace
        from_torch(m, torch.randn(2, 3, 8, 8), lambda o: o)
    assert [mod.training for mod in m.modules()] == before


# --- 4. grad mode ------------------------------------------------------------------------------
def test_traces_under_no_grad_and_set_grad_enabled_false() -> None:
    expected = from_torch(_mlp(), torch.randn(3, 4), _sum)
    with torch.no_grad():
        g = from_torch(_mlp(), torch.randn(3, 4), _sum)
        assert not torch.is_grad_enabled()
    assert g == expected
    with torch.set_grad_enabled(False):
        assert from_torch(_mlp(), torch.randn(3, 4), _sum) == expected


def test_loss_without_a_gradient_and_inference_mode_are_clear_errors() -> None:
    with pytest.raises(TraceError, match="depends on no trainable parameter"):
        from_torch(_mlp(), torch.randn(3, 4), lambda o: o.detach().sum())
    with pytest.raises(TraceError, match="depends on no trainable parameter"):
        from_torch(_mlp(), torch.randn(3, 4), lambda o: torch.zeros((), requires_grad=False))
    with torch.inference_mode(), pytest.raises(TraceError, match="inference_mode"):
        from_torch(_mlp(), torch.randn(3, 4), _sum)


# --- 5. nested inputs --------------------------------------------------------------------------
class _Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.a(x) + self.b(y)


class _DictIn(_Pair):
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        return super().forward(batch["x"], batch["y"])


class _NestedIn(_Pair):
    def forward(self, xy: tuple[torch.Tensor, ...], scale: float, unused: None) -> torch.Tensor:  # type: ignore[override]
        assert unused is None and scale == 2.0
        return super().forward(*xy) * scale


def test_dict_and_nested_inputs_become_named_input_ops() -> None:
    x, y = torch.randn(2, 4), torch.randn(2, 5)
    flat = from_torch(_Pair(), (x, y), _sum)
    g = from_torch(_DictIn(), ({"x": x, "y": y},), _sum)
    assert _names(g, OpKind.INPUT) == ["input0['x']", "input0['y']"]
    assert (g.n_ops, g.n_edges) == (flat.n_ops, flat.n_edges)
    # a number and None pass through as constants, without an op
    g = from_torch(_NestedIn(), ((x, y), 2.0, None), _sum)
    assert _names(g, OpKind.INPUT) == ["input0[0]", "input0[1]"]


def test_dict_targets() -> None:
    def loss(out: torch.Tensor, t: dict[str, torch.Tensor]) -> torch.Tensor:
        return (out - t["a"]).pow(2).mean() + (out - t["b"]).abs().mean()

    targets = {"a": torch.randn(2, 3), "b": torch.randn(2, 3)}
    g = from_torch(_Pair(), (torch.randn(2, 4), torch.randn(2, 5)), loss, targets=targets)
    assert _names(g, OpKind.INPUT) == ["input0", "input1", "target0['a']", "target0['b']"]
    for name in ("target0['a']", "target0['b']"):
        assert {str(g.scope[s]) for s in g.successors(g.op_index(name))} == {"loss"}


# --- 6. optimizer state ------------------------------------------------------------------------
def test_adam_state_is_not_allocated() -> None:
    class Huge(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            # 2**50 elements that take 4 bytes: two real moments could never be allocated
            self.table = nn.Parameter(torch.zeros(1).expand(2**50))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a(x) * self.table[:4]

    g = from_torch(Huge(), torch.randn(2, 4), _sum, "adam")
    assert g.persistent_bytes[g.op_index("table")] == 4 * F32 * 2**50


# --- 7. compiled and scripted modules ----------------------------------------------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # importing torch._dynamo warns
def test_compiled_model_and_submodule_trace_as_the_original() -> None:
    class Outer(nn.Module):
        def __init__(self, compiled: bool) -> None:
            super().__init__()
            blk = nn.Linear(4, 4)
            self.blk = torch.compile(blk) if compiled else blk
            self.head = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(torch.relu(self.blk(x)))

    x = torch.randn(2, 4)
    expected = from_torch(Outer(False), x, _sum, name="outer")
    outer = Outer(True)
    compiled_blk = outer.blk
    assert from_torch(outer, x, _sum, name="outer") == expected
    assert outer.blk is compiled_blk  # the model is left as it was
    assert from_torch(torch.compile(Outer(False)), x, _sum, name="outer") == expected
    assert from_torch(torch.compile(Outer(False)), x, _sum).name == "Outer"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script is deprecated
def test_script_module_is_a_clear_error() -> None:
    with pytest.raises(TraceError, match="TorchScript"):
        from_torch(torch.jit.script(_mlp()), torch.randn(2, 4), _sum)


# --- 8. parameters without a gradient ----------------------------------------------------------
def test_parameter_without_gradient_owns_only_its_weight() -> None:
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 2)
            self.unused = nn.Linear(10, 10, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a(x)

    for optimizer, factor in OPTIMIZERS.items():
        g = from_torch(Unused(), torch.randn(2, 4), _sum, optimizer)  # type: ignore[arg-type]
        assert g.persistent_bytes[g.op_index("unused.weight")] == 100 * F32
        assert g.persistent_bytes[g.op_index("a.weight")] == factor * 8 * F32
        updated = {
            str(g.op_names[p])
            for i in np.flatnonzero(g.op_kind == OpKind.OPTIMIZER)
            for p in g.predecessors(int(i))
            if g.op_kind[p] == OpKind.PARAMETER
        }
        assert updated == {"a.weight", "a.bias"}


# --- 9. .item() --------------------------------------------------------------------------------
def test_item_used_as_a_value_is_an_edge() -> None:
    class Item(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.a(x)
            return h * h.max().item()

    g = from_torch(Item(), torch.randn(2, 4), _sum)
    assert set(_preds(g, "mul")) == {"addmm", "_local_scalar_dense"}
    (source,) = g.predecessors(g.op_index("_local_scalar_dense"))
    assert g.op_kind[source] == OpKind.REDUCTION  # the max it reads out
    assert g.op_kind[g.op_index("_local_scalar_dense")] == OpKind.DATA_MOVEMENT
    assert _succs(g, "_local_scalar_dense")  # read by the forward mul and its gradient


def test_branch_on_item_is_a_trace_error() -> None:
    class Branch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.a(x)
            return h * 2 if h.max().item() > 0 else h

    with pytest.raises(TraceError, match="data-dependent control flow"):
        from_torch(Branch(), torch.randn(2, 4), _sum)


# --- the package's re-exports --------------------------------------------------------------------
def test_importers_package_reexports_the_public_names() -> None:
    from go_gym.importers import torch as torch_importer

    assert set(go_gym.importers.__all__) == set(torch_importer.__all__)
    for name in torch_importer.__all__:
        assert getattr(go_gym.importers, name) is getattr(torch_importer, name)
        assert name in dir(go_gym.importers)
