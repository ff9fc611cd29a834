"""Import one PyTorch training step (forward, backward, optimizer update) as an `OpGraph`.

`from_torch` traces a functional train step with fake tensors, so nothing is allocated and
nothing is computed: ``make_fx(..., tracing_mode="fake")`` records every aten op that one
step runs, with the shape and dtype of every tensor, in about a second for Inception-v3 (the
optimizer state is created on the ``meta`` device). The step is written functionally
(parameters, buffers and optimizer state are explicit inputs; gradients come from
`torch.autograd.grad`; the update is one op per parameter, the way PyTorch's fused optimizers
and TensorFlow's ``ApplyAdam`` are), so the backward pass and the optimizer update appear in
the graph as real ops. The model's parameters and buffers are swapped for the traced inputs
for the whole step (forward, loss and backward), so a loss that reads ``model.parameters()``
(an L2 term) or a ``torch.utils.checkpoint`` recomputation in the backward pass uses the same
PARAMETER ops as the forward, and its gradient reaches their updates.

What each op gets, and why:

- **Op kind**: from the aten op name (`_KIND_BY_NAME`), else from PyTorch's op tags
  (``pointwise`` -> elementwise, ``reduction`` -> reduction), else ``OTHER``.
- **FLOPs**: PyTorch's flop registry (`torch.utils.flop_counter`) for matmuls, convolutions
  and attention, forward and backward (plus one per output element for the bias of ``addmm``
  and ``baddbmm``, which the registry leaves out); shape formulas for the rest (see `_op_flops`):
  elementwise ``numel(out) x factor`` (1 for arithmetic, 4 for transcendental functions, 8 for
  GELU), reductions ``numel(in)``, normalisation ``5 x numel`` forward / ``8 x numel`` backward,
  softmax ``5 x numel`` forward / ``4 x numel`` backward, pooling ``kernel area x numel(out)``,
  losses ``numel(in)`` forward / ``numel(grad_in)`` backward, embedding lookups 0 (a gather,
  bytes only) and their dense backward ``numel(grad_out)`` (a scatter-add), data movement 0,
  optimizer updates ``2`` (SGD) or ``12`` (Adam: 3 for the first moment, 4 for the second, 5
  for the bias-corrected update) per parameter element.
- **Bytes**: an op reads each distinct input tensor once, ``numel x itemsize`` of what it
  actually indexes (a sliced or selected input reads only the slice, a broadcast input only its
  real storage), and writes all its outputs (in-place updates write the tensors they mutate).
  ``temp_bytes`` is 0: fake tensors say nothing about kernel workspaces.
- **Persistent bytes**: the PARAMETER op of each trainable tensor owns its weight, its gradient
  and its optimizer state: 2x the weight's bytes for SGD (weight + gradient), 4x for Adam
  (+ first and second moments; the step counter is negligible). A trainable parameter that
  gets no gradient in the step (an unused layer) owns only its weight: PyTorch allocates no
  gradient or optimizer state for it, and the graph has no update op for it. Buffers
  (batch-norm running statistics) and frozen parameters are CONSTANT ops owning their own bytes.
- **Scope**: the path of the innermost module running when the op was recorded
  (``"encoder.layers.3.attn"``; ``""`` is the root module, ``"loss"`` the loss function,
  ``"input"`` the step's inputs). Backward ops inherit the scope of the forward op whose
  gradient they compute (autograd's sequence numbers link the two, see `_BackwardAttribution`);
  gradient accumulations that autograd performs between nodes take the scope of the gradient
  they accumulate; optimizer ops take the scope of their parameter's module.
- **Layer**: see `default_layer_rule`; backward ops take the layer of their forward op,
  optimizer ops that of their parameter.
- **Colocation**: each parameter and its optimizer op share a colocation group, since an
  update must run where its weights and optimizer state live (TensorFlow enforces the same).

Zero-cost plumbing (views, reshapes, transposes, slices, ``detach``, ``getitem`` of a
multi-output op) is folded away: its consumers read straight from the op that really produced
the data, over an edge that carries that op's whole output tensor, since that tensor is what
would cross devices. In-place writes are dependencies: an op that reads a tensor depends on
the last op that wrote into its memory, also through a view (``out[:, :3] = a(x)`` then
``c(out)``: ``c`` reads the ``copy_``, which reads the tensor it writes into), and such a
write's output edge carries the whole tensor it wrote into. Tensor factories (``zeros``,
``ones_like``, ...) become CONSTANT ops with no inputs (they read no data). A Python scalar
read out of a tensor (``h * h.max().item()``) is an edge from the op that reads it out
(``_local_scalar_dense``) to the ops that use it. Data-dependent Python control flow
(``if x.sum() > 0``, a branch or a size taken from ``.item()``, ``nonzero``, boolean masks)
cannot be traced with fake tensors; `TraceError` says so and names the module that was running.
"""

from __future__ import annotations

import math
import operator
import re
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.fx.traceback as fx_traceback
from torch import nn
from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx.experimental.symbolic_shapes import GuardOnDataDependentSymNode
from torch.multiprocessing.reductions import StorageWeakRef
from torch.nn.utils.stateless import _reparametrize_module
from torch.utils import flop_counter
from torch.utils._pytree import (
    keystr,
    tree_flatten,
    tree_flatten_with_path,
    tree_map,
    tree_unflatten,
)

from go_gym.graph import OpGraph
from go_gym.opkinds import OpKind

__all__ = ["OPTIMIZERS", "LayerRule", "TraceError", "default_layer_rule", "from_torch"]

#: Optimizers `from_torch` can trace, with the persistent bytes each parameter owns, as a
#: multiple of its weight's bytes: weight + gradient (SGD), + two moments (Adam).
OPTIMIZERS: dict[str, int] = {"sgd": 2, "adam": 4}

_SCOPE_KEY = "go_gym_scope"  # our key in node.meta["custom"]
_PHASE_KEY = "go_gym_phase"  # "forward" | "loss" | "backward" | "optimizer"
_FWD_SEQ_KEY = "go_gym_fwd_seq"  # in backward: sequence nr of the autograd node running
_LOSS_SCOPE = "loss"
_INPUT_SCOPE = "input"


class TraceError(ValueError):
    """A model could not be traced into a graph; the message says why and where."""


#: ``layer_rule(model, forward_scopes) -> (scope -> layer or None)``; see `default_layer_rule`.
LayerRule = Callable[[nn.Module, Iterable[str]], Callable[[str], "int | None"]]


# --- op vocabulary -------------------------------------------------------------------------
#: Ops that only relabel memory (views) or copy nothing of cost: folded into their producer.
_PLUMBING: frozenset[str] = frozenset(
    "view _unsafe_view reshape _reshape_alias expand expand_as permute transpose t "
    "unsqueeze squeeze slice select narrow as_strided alias detach lift_fresh "
    "lift_fresh_copy split split_with_sizes unbind chunk tensor_split unfold diagonal "
    "view_as view_as_real view_as_complex movedim swapaxes swapdims flatten unflatten "
    "_unsafe_split unsafe_split unsafe_chunk contiguous numpy_T mT mH squeeze_ "
    "unsqueeze_ t_ transpose_ as_strided_ detach_".split()
)

#: Tensor factories: they read no data (at most a shape), so they become input-free constants.
_FACTORIES: frozenset[str] = frozenset(
    "zeros ones full empty empty_strided empty_like zeros_like ones_like full_like "
    "new_zeros new_ones new_full new_empty new_empty_strided arange scalar_tensor eye "
    "linspace tensor _tensor_constant fill zero".split()
)

_KIND_BY_NAME: dict[str, OpKind] = {}
for _kind, _ops in {
    OpKind.MATMUL: "mm bmm addmm baddbmm addbmm addmv mv dot vdot matmul linear _scaled_mm "
    "addr outer _int_mm mkldnn_rnn_layer mkldnn_rnn_layer_backward lstm gru rnn_tanh rnn_relu",
    OpKind.CONVOLUTION: "convolution _convolution convolution_backward cudnn_convolution "
    "cudnn_convolution_transpose _slow_conv2d_forward _slow_conv2d_backward "
    "mkldnn_convolution convolution_overrideable _conv_depthwise2d slow_conv_dilated2d "
    "slow_conv_transpose2d thnn_conv2d conv1d conv2d conv3d",
    OpKind.ATTENTION: "_scaled_dot_product_flash_attention "
    "_scaled_dot_product_flash_attention_backward _scaled_dot_product_efficient_attention "
    "_scaled_dot_product_efficient_attention_backward _scaled_dot_product_cudnn_attention "
    "_scaled_dot_product_cudnn_attention_backward _scaled_dot_product_flash_attention_for_cpu "
    "_scaled_dot_product_flash_attention_for_cpu_backward _scaled_dot_product_attention_math "
    "_flash_attention_forward _flash_attention_backward _efficient_attention_forward "
    "_efficient_attention_backward flex_attention flex_attention_backward",
    OpKind.NORMALIZATION: "native_batch_norm native_batch_norm_backward _native_batch_norm_legit "
    "_native_batch_norm_legit_functional _native_batch_norm_legit_no_training "
    "_batch_norm_with_update _batch_norm_with_update_functional _batch_norm_no_update "
    "batch_norm_backward cudnn_batch_norm cudnn_batch_norm_backward native_layer_norm "
    "native_layer_norm_backward native_group_norm native_group_norm_backward _fused_rms_norm "
    "_fused_rms_norm_backward rms_norm layer_norm group_norm batch_norm instance_norm "
    "weight_norm _weight_norm_interface _weight_norm_interface_backward",
    OpKind.SOFTMAX: "_softmax _log_softmax _softmax_backward_data _log_softmax_backward_data "
    "softmax log_softmax _safe_softmax",
    OpKind.POOLING: "max_pool2d_with_indices max_pool2d_with_indices_backward avg_pool2d "
    "avg_pool2d_backward _adaptive_avg_pool2d _adaptive_avg_pool2d_backward adaptive_max_pool2d "
    "adaptive_max_pool2d_backward max_pool1d max_pool2d max_pool3d_with_indices "
    "max_pool3d_with_indices_backward avg_pool1d avg_pool3d avg_pool3d_backward "
    "_adaptive_avg_pool3d _adaptive_avg_pool3d_backward adaptive_max_pool1d max_unpool2d",
    OpKind.EMBEDDING: "embedding embedding_dense_backward embedding_backward "
    "embedding_sparse_backward _embedding_bag _embedding_bag_backward "
    "_embedding_bag_dense_backward embedding_renorm_",
    OpKind.LOSS: "nll_loss_forward nll_loss_backward nll_loss2d_forward nll_loss2d_backward "
    "nll_loss mse_loss mse_loss_backward l1_loss smooth_l1_loss smooth_l1_loss_backward "
    "huber_loss huber_loss_backward binary_cross_entropy binary_cross_entropy_backward "
    "binary_cross_entropy_with_logits cross_entropy_loss kl_div soft_margin_loss "
    "soft_margin_loss_backward multilabel_margin_loss_forward multi_margin_loss",
    OpKind.RANDOM: "native_dropout bernoulli bernoulli_ rand rand_like randn randn_like "
    "randint randint_like normal normal_ uniform_ uniform randperm multinomial "
    "_fused_dropout dropout",
    OpKind.DATA_MOVEMENT: "cat stack clone copy copy_ _to_copy to index index_select gather "
    "scatter scatter_ scatter_add scatter_add_ scatter_reduce index_put index_put_ "
    "_unsafe_index _unsafe_index_put index_add index_add_ index_copy constant_pad_nd pad "
    "reflection_pad1d reflection_pad2d replication_pad1d replication_pad2d "
    "reflection_pad1d_backward reflection_pad2d_backward slice_scatter select_scatter "
    "as_strided_scatter diagonal_scatter repeat repeat_interleave flip roll narrow_copy "
    "masked_scatter masked_select take put_ tril_indices triu_indices _unsafe_view_copy "
    "view_copy expand_copy permute_copy t_copy transpose_copy unsqueeze_copy squeeze_copy "
    "slice_copy select_copy split_copy split_with_sizes_copy unbind_copy alias_copy "
    "detach_copy as_strided_copy _pin_memory upsample_nearest2d upsample_nearest2d_backward "
    "im2col col2im pixel_shuffle channel_shuffle _cdist_forward cumsum_backward select_backward "
    "slice_backward index_select_backward unfold_backward diagonal_backward "
    "as_strided_backward narrow_backward _local_scalar_dense",
    OpKind.ELEMENTWISE: "triu tril masked_fill where clamp threshold_backward",
    OpKind.REDUCTION: "sum mean amax amin max min argmax argmin var std var_mean std_mean prod "
    "norm linalg_vector_norm logsumexp any all cumsum cumprod _log_softmax_backward "
    "nansum topk sort median mode count_nonzero aminmax cummax cummin logcumsumexp",
    OpKind.OPTIMIZER: "sgd_step adam_step _fused_adam_ _fused_adamw_ _fused_sgd_ _fused_adam "
    "_fused_adamw _fused_sgd",
}.items():
    for _name in _ops.split():
        _KIND_BY_NAME[_name] = _kind

#: FLOPs per output element of elementwise ops beyond plain arithmetic (factor 1).
_POINTWISE_FACTOR: dict[str, float] = {
    **dict.fromkeys(
        "exp exp2 expm1 log log1p log2 log10 sigmoid tanh erf erfc erfinv sin cos tan asin "
        "acos atan atan2 sinh cosh asinh acosh atanh pow sqrt rsqrt silu softplus logit "
        "elu selu celu mish hardswish log_sigmoid_forward _log_sigmoid".split(),
        4.0,
    ),
    **dict.fromkeys("gelu gelu_backward".split(), 8.0),
    **dict.fromkeys(
        "tanh_backward sigmoid_backward addcmul addcdiv lerp softplus_backward "
        "elu_backward hardtanh_backward leaky_relu_backward logit_backward".split(),
        3.0,
    ),
    **dict.fromkeys("silu_backward mish_backward hardswish_backward".split(), 5.0),
    "native_dropout": 2.0,
    "native_dropout_backward": 1.0,
}

#: Per-element FLOPs of optimizer updates (see the module docstring).
_OPTIMIZER_FLOPS_PER_ELEMENT = {"sgd": 2.0, "adam": 12.0}


def _op_name(target: Any) -> str:
    """The bare aten op name of an fx target (``aten.addmm.default`` -> ``"addmm"``)."""
    if target is operator.getitem:
        return "getitem"
    name = getattr(target, "__name__", str(target))
    if isinstance(target, torch._ops.OpOverload):
        name = target._schema.name.split("::")[-1]
    return name


def _is_view(target: Any, name: str) -> bool:
    """Whether an op returns an alias of its first input without writing it (a view)."""
    if name in _PLUMBING:
        return True
    if isinstance(target, torch._ops.OpOverload):
        returns = target._schema.returns
        if returns and returns[0].alias_info is not None and not returns[0].alias_info.is_write:
            return True
    return False


def _op_kind(target: Any, name: str) -> OpKind:
    if name in _KIND_BY_NAME:
        return _KIND_BY_NAME[name]
    base = name.rstrip("_")
    if base in _KIND_BY_NAME:
        return _KIND_BY_NAME[base]
    tags = getattr(target, "tags", ())
    if torch.Tag.pointwise in tags or name in _POINTWISE_FACTOR:
        return OpKind.ELEMENTWISE
    if torch.Tag.reduction in tags:
        return OpKind.REDUCTION
    if name.endswith("_backward"):
        fwd = name[: -len("_backward")]
        if fwd in _KIND_BY_NAME:
            return _KIND_BY_NAME[fwd]
        packet = getattr(torch.ops.aten, fwd, None)
        overloads = [getattr(packet, o) for o in packet.overloads()] if packet is not None else []
        if any(torch.Tag.pointwise in o.tags for o in overloads):
            return OpKind.ELEMENTWISE
    return OpKind.OTHER


# --- sizes -----------------------------------------------------------------------------------
def _tensors(value: Any) -> list[torch.Tensor]:
    flat, _ = tree_flatten(value)
    return [v for v in flat if isinstance(v, torch.Tensor)]


def _nbytes(t: torch.Tensor) -> float:
    return float(t.numel() * t.element_size())


def _numel(value: Any) -> float:
    return float(sum(t.numel() for t in _tensors(value)))


def _storage_bytes(t: torch.Tensor) -> float:
    """Bytes of the memory a tensor really spans (an expanded view spans its base only)."""
    if t.numel() == 0:
        return 0.0
    span = 1 + sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride(), strict=True))
    return float(min(t.numel(), span) * t.element_size())


#: Python scalars that a traced tensor produced (``.item()``): symbolic, they carry an edge.
_SYM_TYPES: tuple[type, ...] = (torch.SymInt, torch.SymFloat, torch.SymBool)


def _storage_key(value: Any) -> StorageWeakRef | None:
    """The identity of the memory a (fake) tensor lives in: equal for a tensor and its views."""
    if not isinstance(value, torch.Tensor):
        return None
    try:
        return StorageWeakRef(value.untyped_storage())
    except (RuntimeError, NotImplementedError):  # tensors without storage (sparse, nested)
        return None


def _schema_arg(node: torch.fx.Node, k: int, name: str) -> Any:
    """The value node ``node`` passes for argument ``k`` (called ``name``) of its schema."""
    return node.args[k] if k < len(node.args) else node.kwargs.get(name)


# --- flops -----------------------------------------------------------------------------------
def _op_flops(
    target: Any, name: str, kind: OpKind, args: Any, kwargs: Any, out: Any, optimizer: str
) -> float:
    """FLOPs of one aten op from its (fake) arguments and outputs; see the module docstring."""
    packet = getattr(target, "overloadpacket", None)
    if packet in flop_counter.flop_registry:
        flops = float(flop_counter.flop_registry[packet](*args, **kwargs, out_val=out))
        if name in ("addmm", "baddbmm"):
            flops += _numel(out)  # the registry leaves out adding the bias
        return flops
    tensors_in = _tensors((args, kwargs))
    first_in = float(tensors_in[0].numel()) if tensors_in else 0.0
    n_out = _numel(out)
    if kind == OpKind.ATTENTION:
        q, k, v = (a.shape for a in tensors_in[:3])
        if name.endswith("_backward"):
            g = tensors_in[0].shape
            q, k, v = (a.shape for a in tensors_in[1:4])
            return float(flop_counter.sdpa_backward_flop_count(g, q, k, v))
        return float(flop_counter.sdpa_flop_count(q, k, v))
    if name.startswith("mkldnn_rnn_layer") or name in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
        return _fused_rnn_flops(name, tensors_in, n_out)
    if kind == OpKind.ELEMENTWISE:
        return n_out * _POINTWISE_FACTOR.get(name.rstrip("_"), 1.0)
    if kind == OpKind.REDUCTION:
        return first_in
    if kind == OpKind.NORMALIZATION:
        return (8.0 if name.endswith("_backward") else 5.0) * first_in
    if kind == OpKind.SOFTMAX:
        return (4.0 if name.endswith("_backward_data") else 5.0) * first_in
    if kind == OpKind.POOLING:
        if "adaptive" in name:
            return max(first_in, n_out)
        if name.startswith("max_pool") and name.endswith("_backward"):
            return first_in  # scatter the gradient through the saved indices
        kernel = args[2] if name.endswith("_backward") else args[1]
        area = math.prod(kernel) if isinstance(kernel, Sequence) else float(kernel) ** 2
        out_elems = first_in if name.endswith("_backward") else float(_tensors(out)[0].numel())
        return float(area) * out_elems
    if kind == OpKind.EMBEDDING:
        return first_in if name.endswith("backward") else 0.0
    if kind == OpKind.LOSS:
        return n_out if name.endswith("_backward") else first_in
    if kind == OpKind.OPTIMIZER:
        params = args[0] if args and isinstance(args[0], Sequence) else tensors_in[:1]
        per = _OPTIMIZER_FLOPS_PER_ELEMENT["adam" if "adam" in name else optimizer]
        return per * _numel(params)
    if kind == OpKind.RANDOM:
        return n_out * _POINTWISE_FACTOR.get(name, 1.0)
    if kind in (OpKind.DATA_MOVEMENT, OpKind.CONSTANT):
        return 0.0
    return n_out  # OTHER: one operation per output element


def _fused_rnn_flops(name: str, tensors_in: list[torch.Tensor], n_out: float) -> float:
    """A fused (CPU oneDNN) LSTM layer: its gate matmuls plus ~10 pointwise ops per cell value.

    Forward inputs are (x, w_ih, w_hh, ...): ``2 * T * B * 4H * (I + H)`` for the matmuls;
    the backward costs twice the forward (gradients for both the inputs and the weights).
    Traced graphs should prefer explicit cells, whose ops a placement can split; this only
    keeps a model that uses ``nn.LSTM`` from being costed as free.
    """
    backward = name.endswith("backward")
    x, w_ih, w_hh = tensors_in[0], tensors_in[1], tensors_in[2]  # same order in the backward
    gates, inp = (float(w_ih.shape[0]), float(w_ih.shape[1])) if w_ih.dim() == 2 else (0.0, 0.0)
    hidden = float(w_hh.shape[1]) if w_hh.dim() == 2 else 0.0
    steps = float(x.shape[0] * x.shape[1]) if x.dim() == 3 else 0.0
    fwd = 2.0 * steps * gates * (inp + hidden) + 10.0 * steps * hidden
    return (2.0 if backward else 1.0) * fwd


# --- optimizer updates ---------------------------------------------------------------------
# One op per parameter, as PyTorch's fused optimizers and TensorFlow's ApplyAdam are: a custom
# op rather than aten's ``_fused_sgd_`` / ``_fused_adam_``, which have no meta kernel (so fake
# tensors would fall back to running them for real on zero-filled memory).
@torch.library.custom_op("go_gym::sgd_step", mutates_args=("param",))
def sgd_step(param: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
    """Plain SGD on one parameter: ``param -= lr * grad`` (2 FLOPs per element)."""
    param.sub_(grad, alpha=lr)


@sgd_step.register_fake
def _sgd_step_fake(param: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
    return None


@torch.library.custom_op(
    "go_gym::adam_step", mutates_args=("param", "exp_avg", "exp_avg_sq", "step")
)
def adam_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: torch.Tensor,
    lr: float,
) -> None:
    """Adam (beta1 0.9, beta2 0.999, eps 1e-8) on one parameter and its two moments."""
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step.add_(1)
    t = float(step.item())
    exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (exp_avg_sq / (1 - beta2**t)).sqrt_().add_(eps)
    param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**t))


@adam_step.register_fake
def _adam_step_fake(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: torch.Tensor,
    lr: float,
) -> None:
    return None


# --- attribution -------------------------------------------------------------------------------
def _custom() -> dict[str, Any]:
    """The ``custom`` metadata make_fx copies onto every node it creates from now on."""
    meta = fx_traceback.current_meta
    custom = meta.get("custom")
    if custom is None:
        custom = meta["custom"] = {}
    return custom


@dataclass
class _ModuleScopes:
    """Forward hooks that record which module is running, as the scope of every traced op.

    The stack is deliberately not popped when a forward raises, so that after an exception
    `innermost` still names the module that failed.
    """

    model: nn.Module
    stack: list[str] = field(default_factory=list)
    handles: list[Any] = field(default_factory=list)

    def __enter__(self) -> _ModuleScopes:
        for path, module in self.model.named_modules():
            self.handles.append(module.register_forward_pre_hook(self._pre(path)))
            self.handles.append(module.register_forward_hook(self._post()))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _pre(self, path: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any) -> None:
            self.stack.append(path)
            _custom()[_SCOPE_KEY] = path

        return hook

    def _post(self) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            self.stack.pop()
            _custom()[_SCOPE_KEY] = self.stack[-1] if self.stack else ""

        return hook

    @property
    def innermost(self) -> str | None:
        return self.stack[-1] if self.stack else None


class _BackwardAttribution:
    """Autograd node hooks that tag every backward op with the forward op it differentiates.

    During the forward pass make_fx stores, on each node, the sequence number of the autograd
    node the op created (``node.meta["seq_nr"]``). A pre-hook on every autograd node of the
    loss's graph records that number while the node runs; a post-hook clears it. Backward ops
    recorded in between carry it in their metadata, which links them to their forward op
    (this is what AOTAutograd does to copy forward metadata onto backward nodes).

    ``reentrant_checkpoint`` says whether the graph holds a ``torch.utils.checkpoint`` region
    with ``use_reentrant=True``, whose backward cannot run under `torch.autograd.grad`.
    """

    def __init__(self, root: torch.autograd.graph.Node | None) -> None:
        self.handles: list[Any] = []
        self.reentrant_checkpoint = False
        seen: set[torch.autograd.graph.Node] = set()
        todo = [root] if root is not None else []
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            if node.name() == "CheckpointFunctionBackward":
                self.reentrant_checkpoint = True
            seq = node._sequence_nr()
            self.handles.append(node.register_prehook(self._pre(seq)))
            self.handles.append(node.register_hook(self._post()))
            todo.extend(nxt for nxt, _ in node.next_functions if nxt is not None)

    @staticmethod
    def _pre(seq: int) -> Callable[..., None]:
        def hook(grad_outputs: Any) -> None:
            _custom()[_FWD_SEQ_KEY] = seq

        return hook

    @staticmethod
    def _post() -> Callable[..., None]:
        def hook(grad_inputs: Any, grad_outputs: Any) -> None:
            _custom().pop(_FWD_SEQ_KEY, None)

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


#: What fake-tensor tracing raises when Python code needs a tensor's value.
_DATA_DEPENDENT_ERRORS: tuple[type[BaseException], ...] = (
    DataDependentOutputException,
    DynamicOutputShapeException,
    GuardOnDataDependentSymNode,
)


def _user_frame(exc: BaseException) -> str:
    """``file:line`` of the innermost traceback frame outside torch, or ``""``."""
    torch_dir = torch.__file__.rsplit("/", 1)[0]
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(torch_dir)
    ]
    here = __file__
    frames = [f for f in frames if f.filename != here]
    if not frames:
        return ""
    f = frames[-1]
    return f" at {f.filename}:{f.lineno} ({(f.line or '').strip()!r})"


# --- layers ------------------------------------------------------------------------------------
_INDEX = re.compile(r"^\d+$")


def default_layer_rule(model: nn.Module, scopes: Iterable[str]) -> Callable[[str], int | None]:
    """The default layer rule: a function from scope to layer index, or None for no layer.

    A *stack* is a ``ModuleList`` of at least two modules, or a ``Sequential`` most of whose
    modules (at least half, and at least two) share one class: a stack of repeated blocks, as
    opposed to a ``Sequential`` of different layers such as a conv-norm-relu stem. (The zoo
    keeps its repeated blocks in ``ModuleList``s, so on zoo models this is the zoo's
    `go_gym.zoo.models.layer_index` convention.)

    - If the model has a stack, the layer of a scope is its index in the outermost stack on
      its path: ``"layers.3.attn"`` -> 3, and both ``"encoder.layers.3"`` and
      ``"decoder.layers.3"`` -> 3 (so encoder and decoder layer *i* share a layer, as in the
      usual one-layer-per-GPU placements of seq2seq models). Scopes outside every stack
      (embeddings, stems, heads, the loss) get None.
    - Otherwise (e.g. Inception-v3, whose blocks are named attributes), the layer of a scope
      is the rank, in order of first execution, of its top-level child module
      (``"Mixed_5b.branch1x1"`` -> the rank of ``Mixed_5b``); the root's own ops get None.

    `from_torch` gives ops whose scope gets None the layer of their data: the largest layer
    among their inputs (a head or the loss sits with the last layer it reads), else the
    smallest among their consumers (an embedding sits with the first layer that reads it).

    Args:
        model: the traced module.
        scopes: the forward scopes of the traced ops, in program order.
    """
    modules = dict(model.named_modules())

    def is_stack(path: str) -> bool:
        module = modules.get(path)
        kids = list(module.children()) if module is not None else []
        if isinstance(module, nn.ModuleList):
            return len(kids) >= 2
        if not isinstance(module, nn.Sequential):
            return False
        top = max(Counter(type(k) for k in kids).values(), default=0)
        return top >= 2 and 2 * top >= len(kids)

    stack_index: dict[str, int | None] = {}

    def by_stack(scope: str) -> int | None:
        if scope not in stack_index:
            parts = scope.split(".") if scope else []
            found = None
            for k, part in enumerate(parts):
                if _INDEX.match(part) and is_stack(".".join(parts[:k])):
                    found = int(part)
                    break
            stack_index[scope] = found
        return stack_index[scope]

    ordered = list(dict.fromkeys(s for s in scopes if s not in ("", _LOSS_SCOPE, _INPUT_SCOPE)))
    if any(by_stack(s) is not None for s in ordered):
        return by_stack
    tops = list(dict.fromkeys(s.split(".")[0] for s in ordered))
    rank = {top: i for i, top in enumerate(tops)}

    def by_block(scope: str) -> int | None:
        return rank.get(scope.split(".")[0]) if scope else None

    return by_block


# --- the importer ------------------------------------------------------------------------------
@dataclass
class _Op:
    name: str
    kind: OpKind
    scope: str
    phase: str
    flops: float = 0.0
    bytes_read: float = 0.0
    bytes_written: float = 0.0
    persistent: float = 0.0
    colocation: int = -1
    fwd_seq: int | None = None  # backward ops: the sequence nr of their forward op
    seq: int | None = None  # forward ops: their own sequence nr
    inputs: dict[tuple[int, int], float] = field(default_factory=dict)  # (op, out) -> bytes
    outputs: dict[int, float] = field(default_factory=dict)  # output index -> bytes


@dataclass
class _Leaves:
    """A pytree of step inputs split into its tensors (traced) and other leaves (constants)."""

    leaves: list[Any]
    spec: Any
    slots: list[int]  # positions of the tensor leaves
    names: list[str]  # their op names: ``input0``, ``input1['ids']``, ``target0[1]``

    @classmethod
    def of(cls, values: tuple[Any, ...], prefix: str) -> _Leaves:
        with_path, spec = tree_flatten_with_path(values)
        leaves = [leaf for _, leaf in with_path]
        slots = [k for k, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        names = [
            f"{prefix}{with_path[k][0][0].idx}{keystr(with_path[k][0][1:])}"  # type: ignore[attr-defined]
            for k in slots
        ]
        return cls(leaves, spec, slots, names)

    @property
    def tensors(self) -> list[torch.Tensor]:
        return [self.leaves[k] for k in self.slots]

    def rebuild(self, tensors: Sequence[torch.Tensor]) -> tuple[Any, ...]:
        """The values with their tensors replaced by ``tensors`` (the traced ones)."""
        leaves = list(self.leaves)
        for k, t in zip(self.slots, tensors, strict=True):
            leaves[k] = t
        return tuple(tree_unflatten(leaves, self.spec))


def _refuse_script_modules(model: nn.Module) -> None:
    for path, module in model.named_modules():
        if isinstance(module, torch.jit.ScriptModule):
            where = "the model" if not path else f"submodule {path!r}"
            raise TraceError(
                f"cannot trace {type(model).__name__}: {where} is a TorchScript module "
                f"({type(module).__name__}), which fake-tensor tracing cannot run; pass the "
                "original nn.Module (before torch.jit.script / torch.jit.trace)"
            )


def _unwrap_compiled(model: nn.Module) -> tuple[nn.Module, Callable[[], None]]:
    """The model with its ``torch.compile`` wrappers (OptimizedModule) replaced by the modules
    they wrap, and a function that puts the wrapped submodules back.

    A compiled module runs TorchDynamo, which cannot run inside an FX trace; the module it
    wraps (``_orig_mod``) computes the same thing and holds the same parameters.
    """
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")  # not imported: nothing compiled
    optimized = getattr(eval_frame, "OptimizedModule", None)
    if optimized is None:
        return model, lambda: None
    while isinstance(model, optimized):
        model = model._orig_mod
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    pending = True
    while pending:
        pending = False
        for module in list(model.modules()):
            for key, child in list(module._modules.items()):
                if isinstance(child, optimized):
                    swapped.append((module, key, child))
                    module._modules[key] = child._orig_mod
                    pending = True

    def restore() -> None:
        for module, key, child in reversed(swapped):
            module._modules[key] = child

    return model, restore


def from_torch(
    model: nn.Module,
    example_inputs: Any,
    loss_fn: Callable[..., torch.Tensor],
    optimizer: Literal["sgd", "adam"] = "sgd",
    name: str | None = None,
    *,
    targets: Any = (),
    layer_rule: LayerRule = default_layer_rule,
) -> OpGraph:
    """Trace one training step of ``model`` (forward, backward, optimizer update) as an OpGraph.

    Nothing is allocated or computed: the step runs on fake tensors, so a model whose
    activations would need many GB still traces in seconds on a laptop. The model's own
    parameters only provide shapes and dtypes, and the model is left as it was (parameters,
    buffers, and the train/eval mode of every submodule). The step is traced with autograd
    enabled, also when called under ``torch.no_grad()``. A ``torch.compile``'d model or
    submodule is traced through the module it wraps.

    Args:
        model: the module to train. Its parameters that require grad are trained.
        example_inputs: the positional inputs of ``model(...)``: a tensor or a tuple of them;
            each may also be a nested tuple, list or dict of tensors. Every tensor becomes an
            INPUT op (named ``input0``, ``input1['ids']``, ...); other values (numbers,
            strings, None) are passed through as constants. Their shapes fix the batch.
        loss_fn: ``loss_fn(output, *targets) -> scalar tensor``. It may read the model's
            parameters (``model.parameters()``, for a weight penalty): during the step they
            are the traced parameters.
        optimizer: ``"sgd"`` or ``"adam"``: the update traced, and the optimizer state each
            parameter owns (`OPTIMIZERS`).
        name: graph name; defaults to the model's class name.
        targets: extra inputs of the step that only the loss reads (labels), a tensor or a
            tuple; nested like ``example_inputs``, they become INPUT ops (``target0``, ...).
        layer_rule: maps the model's forward scopes to a scope -> layer function (default
            `default_layer_rule`).

    Returns:
        The graph of one step. Op order is the traced program order (a topological order).

    Raises:
        TraceError: for data-dependent Python control flow (the message names the module and
            the source line), a loss that is not a scalar or depends on no trainable
            parameter, an unknown optimizer, a model with no trainable parameters, a
            parameter used through a tensor captured outside the model, a call under
            ``torch.inference_mode()``, a TorchScript module, or a ``torch.utils.checkpoint``
            with ``use_reentrant=True``.
    """
    if optimizer not in OPTIMIZERS:
        raise TraceError(f"unknown optimizer {optimizer!r}; known optimizers: {sorted(OPTIMIZERS)}")
    if torch.is_inference_mode_enabled():
        raise TraceError(
            "from_torch traces a training step (forward, backward, update) and cannot run "
            "under torch.inference_mode(); call it outside that block"
        )
    _refuse_script_modules(model)
    model, restore_compiled = _unwrap_compiled(model)
    modes = {module: module.training for module in model.modules()}
    try:
        with torch.enable_grad():
            return _trace(model, example_inputs, loss_fn, optimizer, name, targets, layer_rule)
    finally:
        restore_compiled()
        for module, training in modes.items():
            module.training = training


def _trace(
    model: nn.Module,
    example_inputs: Any,
    loss_fn: Callable[..., torch.Tensor],
    optimizer: str,
    name: str | None,
    targets: Any,
    layer_rule: LayerRule,
) -> OpGraph:
    inputs = _Leaves.of(
        tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,),
        "input",
    )
    tgts_in = _Leaves.of(
        tuple(targets) if isinstance(targets, (tuple, list)) else (targets,), "target"
    )
    named_params = [(k, p) for k, p in model.named_parameters() if p.requires_grad]
    frozen = [(k, p) for k, p in model.named_parameters() if not p.requires_grad]
    buffers = list(model.named_buffers())
    cls = type(model).__name__
    if not named_params:
        raise TraceError(f"{cls} has no trainable parameters to train")
    if any(p.is_inference() for _, p in named_params):
        raise TraceError(
            f"cannot trace {cls}: its parameters are inference tensors (the model was built "
            "under torch.inference_mode()), which autograd cannot train; build it outside"
        )
    n_p, n_f, n_b = len(named_params), len(frozen), len(buffers)
    n_in = len(inputs.slots)
    n_state = {"sgd": 0, "adam": 3}[optimizer]
    scopes = _ModuleScopes(model)
    param_names = [k for k, _ in named_params]
    no_grad: set[int] = set()  # parameters that get no gradient in the step

    def step(*flat: torch.Tensor) -> Any:
        params = list(flat[:n_p])
        state = flat[n_p : n_p + n_state * n_p]
        rest = flat[n_p + n_state * n_p :]
        frozen_t, buffer_t = rest[:n_f], rest[n_f : n_f + n_b]
        ins = inputs.rebuild(rest[n_f + n_b : n_f + n_b + n_in])
        tgts = tgts_in.rebuild(rest[n_f + n_b + n_in :])
        tensors = {k: p for k, p in zip(param_names, params, strict=True)}
        tensors.update({k: t for (k, _), t in zip(frozen, frozen_t, strict=True)})
        tensors.update({k: t for (k, _), t in zip(buffers, buffer_t, strict=True)})
        custom = _custom()
        custom[_PHASE_KEY], custom[_SCOPE_KEY] = "forward", ""
        # The traced tensors stand in for the module's own for the whole step, so the loss
        # and a checkpoint's recomputation in the backward pass read them too.
        with _reparametrize_module(model, tensors, tie_weights=True, strict=False):
            out = model(*ins)
            custom[_PHASE_KEY], custom[_SCOPE_KEY] = "loss", _LOSS_SCOPE
            loss = loss_fn(out, *tgts)
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
                raise TraceError(f"loss_fn must return a scalar tensor, got {loss!r}")
            if loss.grad_fn is None:
                raise TraceError(
                    f"cannot trace {cls}: the loss depends on no trainable parameter (it has "
                    "no grad_fn: computed under no_grad, from detached tensors, or from the "
                    "inputs only), so the step has no backward pass"
                )
            custom[_PHASE_KEY] = "backward"
            hooks = _BackwardAttribution(loss.grad_fn)
            try:
                if hooks.reentrant_checkpoint:
                    raise TraceError(
                        f"cannot trace {cls}: torch.utils.checkpoint with use_reentrant=True "
                        "cannot be traced (its backward does not run under "
                        "torch.autograd.grad); use torch.utils.checkpoint.checkpoint(..., "
                        "use_reentrant=False), which computes the same"
                    )
                grads = torch.autograd.grad(loss, params, allow_unused=True)
            finally:
                hooks.remove()
        custom[_PHASE_KEY] = "optimizer"
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads, strict=True)):
                if g is None:
                    no_grad.add(i)
                    continue
                custom[_SCOPE_KEY] = f"#param{i}"
                if optimizer == "sgd":
                    sgd_step(p, g, 0.01)
                else:
                    adam_step(p, g, *state[3 * i : 3 * i + 3], 1e-3)
        return loss

    flat: list[Any] = [p.detach().requires_grad_(True) for _, p in named_params]
    for _, p in named_params:
        for _ in range(n_state // 3):
            # on the meta device: the moments take no memory (the step only needs shapes)
            d = p.detach()
            flat += [
                torch.zeros_like(d, device="meta"),
                torch.zeros_like(d, device="meta"),
                torch.zeros((), dtype=torch.float32, device="meta"),
            ]
    flat += [p.detach() for _, p in frozen] + [b.detach() for _, b in buffers]
    flat += inputs.tensors + tgts_in.tensors
    try:
        with fx_traceback.preserve_node_meta(), scopes:
            gm = make_fx(step, tracing_mode="fake", _allow_non_fake_inputs=True)(*flat)
    except TraceError:
        raise
    except _DATA_DEPENDENT_ERRORS as exc:
        where = scopes.innermost
        module = (
            "the loss function"
            if where is None
            else f"module {where or '<root>'!r} ({type(model.get_submodule(where)).__name__})"
        )
        raise TraceError(
            f"cannot trace {cls}: data-dependent control flow in {module}"
            f"{_user_frame(exc)}. A training graph is traced with fake tensors that have "
            "shapes but no values, so Python code cannot branch on tensor values (if, while, "
            "a condition or a size from .item(), nonzero); rewrite it with tensor ops such as "
            "torch.where. "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    except RuntimeError as exc:
        if "dynamo-optimized" in str(exc):
            raise TraceError(
                f"cannot trace {cls}: it calls a torch.compile'd function{_user_frame(exc)}, "
                "which cannot run inside a trace; pass the original function or module "
                "(compiled nn.Modules are unwrapped automatically)"
            ) from exc
        raise
    placeholder_of = _captured_model_tensors(gm, cls, named_params, frozen, buffers, n_state)
    kinds_of_placeholders = (
        ["param"] * n_p
        + ["state"] * (n_state * n_p)
        + ["frozen"] * n_f
        + ["buffer"] * n_b
        + ["input"] * (n_in + len(tgts_in.slots))
    )
    placeholder_names = (
        param_names
        + [
            f"{param_names[i]}.{s}"
            for i in range(n_p)
            for s in ("exp_avg", "exp_avg_sq", "step")[:n_state]
        ]
        + [k for k, _ in frozen]
        + [k for k, _ in buffers]
        + inputs.names
        + tgts_in.names
    )
    factor = OPTIMIZERS[optimizer]
    return _convert(
        gm.graph,
        name=name or cls,
        optimizer=optimizer,
        placeholder_kinds=kinds_of_placeholders,
        placeholder_names=placeholder_names,
        param_scopes=[k.rpartition(".")[0] for k in param_names],
        param_factors=[1 if i in no_grad else factor for i in range(n_p)],
        constant_placeholders=placeholder_of,
        n_state=n_state,
        layer_rule=lambda scopes: layer_rule(model, scopes),
    )


def _captured_model_tensors(
    gm: torch.fx.GraphModule,
    cls: str,
    named_params: Sequence[tuple[str, torch.Tensor]],
    frozen: Sequence[tuple[str, torch.Tensor]],
    buffers: Sequence[tuple[str, torch.Tensor]],
    n_state: int,
) -> dict[str, int]:
    """Constants of the trace that are the model's own tensors, read through a reference
    taken outside the model (``w = model.fc.weight`` before the step; a tensor derived from it).

    A frozen parameter or buffer maps to its placeholder (returned: constant name ->
    placeholder position); a trainable parameter is an error, since its gradient would not
    reach its update.
    """
    consts = {
        str(node.target): operator.attrgetter(str(node.target))(gm)
        for node in gm.graph.nodes
        if node.op == "get_attr"
    }
    consts = {k: v for k, v in consts.items() if isinstance(v, torch.Tensor)}
    if not consts:
        return {}
    n_p = len(named_params)
    position: dict[StorageWeakRef, tuple[int, str]] = {}
    first_other = n_p + n_state * n_p
    for k, (key, t) in enumerate([*frozen, *buffers]):
        sk = _storage_key(t)
        if sk is not None:
            position.setdefault(sk, (first_other + k, key))
    trainable = {_storage_key(p): key for key, p in named_params}
    found: dict[str, int] = {}
    for const, t in consts.items():
        sk = _storage_key(t)
        if sk is None:
            continue
        if sk in trainable:
            raise TraceError(
                f"cannot trace {cls}: parameter {trainable[sk]!r} is used through a tensor "
                "captured outside the model (a reference taken before from_torch ran, or a "
                "tensor derived from it), so its gradient would not reach its update; read it "
                "through the model during the step instead (model.parameters(), "
                "model.<layer>.weight), which from_torch maps to the traced parameter"
            )
        if sk in position:
            found[const] = position[sk][0]
    return found


def _convert(
    graph: torch.fx.Graph,
    *,
    name: str,
    optimizer: str,
    placeholder_kinds: list[str],
    placeholder_names: list[str],
    param_scopes: list[str],
    param_factors: list[int],
    constant_placeholders: dict[str, int],
    n_state: int,
    layer_rule: Callable[[Iterable[str]], Callable[[str], int | None]],
) -> OpGraph:
    """Turn the traced fx graph into an OpGraph: fold plumbing, cost every op, label it.

    ``param_factors[i]``: parameter ``i``'s persistent bytes as a multiple of its weight's
    (1 for a parameter that got no gradient). ``constant_placeholders``: constants of the
    trace that are a placeholder's tensor (get_attr target -> placeholder position).
    """
    ops: list[_Op] = []
    # fx node -> what it stands for: a tensor (op, output) or a list of them (multi-output op)
    ref: dict[torch.fx.Node, Any] = {}
    used_names: set[str] = set()
    # memory -> (op, output, bytes) of the last op that wrote into it in place: readers of that
    # memory (through any view) depend on it; the output is allocated when first read
    last_writer: dict[StorageWeakRef, tuple[int, int, float]] = {}

    def unique(base: str) -> str:
        cand, k = base, 1
        while cand in used_names:
            cand, k = f"{base}_{k}", k + 1
        used_names.add(cand)
        return cand

    def new_op(op: _Op) -> int:
        op.name = unique(op.name)
        ops.append(op)
        return len(ops) - 1

    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for i, node in enumerate(placeholders):
        what, val = placeholder_kinds[i], node.meta.get("val")
        size = _nbytes(val) if isinstance(val, torch.Tensor) else 0.0
        if what == "state":
            # Optimizer state folds into its parameter op: its bytes are part of that op's
            # persistent bytes, and the update that reads it is colocated with it, so it
            # never crosses a link and needs no edge (the update's bytes_read still counts it).
            ref[node] = None
            continue
        if what == "param":
            op = _Op(
                placeholder_names[i],
                OpKind.PARAMETER,
                param_scopes[i],
                "param",
                persistent=param_factors[i] * size,
                colocation=i,
            )
            idx = new_op(op)
        elif what in ("frozen", "buffer"):
            scope = placeholder_names[i].rpartition(".")[0]
            idx = new_op(
                _Op(placeholder_names[i], OpKind.CONSTANT, scope, "param", persistent=size)
            )
        else:
            idx = new_op(
                _Op(placeholder_names[i], OpKind.INPUT, _INPUT_SCOPE, "input", bytes_written=size)
            )
        ops[idx].outputs[0] = size
        ref[node] = (idx, 0)

    # Size of each (op, output) tensor, for edges.
    def tensor_bytes(r: tuple[int, int]) -> float:
        return ops[r[0]].outputs.get(r[1], 0.0)

    for node in graph.nodes:
        if node.op in ("placeholder", "output"):
            continue
        val = node.meta.get("val")
        if node.op == "get_attr" and str(node.target) in constant_placeholders:
            ref[node] = ref[placeholders[constant_placeholders[str(node.target)]]]
            continue
        if node.op == "get_attr":
            size = _storage_bytes(val) if isinstance(val, torch.Tensor) else 0.0
            idx = new_op(
                _Op(
                    str(node.target),
                    OpKind.CONSTANT,
                    "",
                    "forward",
                    persistent=size,  # a tensor at rest, like a buffer
                )
            )
            ops[idx].outputs[0] = size
            ref[node] = (idx, 0)
            continue
        target = node.target
        opname = _op_name(target)
        if opname == "getitem":
            base, i = node.args
            src = ref.get(base)
            ref[node] = src[i] if isinstance(src, list) else src
            continue
        if not isinstance(target, torch._ops.OpOverload) and isinstance(val, _SYM_TYPES):
            # Python arithmetic on scalars read out of tensors: folded, like a view
            srcs = [ref.get(a) for a in node.all_input_nodes]
            flat_srcs = list(
                dict.fromkeys(
                    r for s in srcs for r in (s if isinstance(s, list) else [s]) if r is not None
                )
            )
            ref[node] = flat_srcs[0] if len(flat_srcs) == 1 else (flat_srcs or None)
            continue
        custom = node.meta.get("custom", {})
        phase = custom.get(_PHASE_KEY, "forward")
        scope = custom.get(_SCOPE_KEY, "")
        if any(not isinstance(d, int) for t in _tensors(val) for d in t.shape):
            where = "the loss function" if phase == "loss" else f"module {scope or '<root>'!r}"
            raise TraceError(
                f"cannot trace {name}: op {opname!r} in {where} has an output whose shape "
                "depends on tensor values (data-dependent control flow such as boolean "
                "masking or nonzero); a training graph needs static shapes. Rewrite it with "
                "shape-preserving ops such as torch.where or a multiplication by a mask."
            )
        node_args = [
            a for a in tree_flatten((node.args, node.kwargs))[0] if isinstance(a, torch.fx.Node)
        ]
        # scalars read out of tensors (.item()) that the op uses: an edge, even into a factory
        scalar_args = [a for a in node_args if isinstance(a.meta.get("val"), _SYM_TYPES)]
        tensor_args = [a for a in node_args if a not in scalar_args]
        if _is_view(target, opname):
            src = ref.get(tensor_args[0]) if tensor_args else None
            if isinstance(val, (tuple, list)):
                ref[node] = [src] * len(val)
            else:
                ref[node] = src
            continue
        if opname in _FACTORIES or (not tensor_args and phase != "optimizer"):
            kind = OpKind.CONSTANT
            tensor_args = []
        else:
            kind = _op_kind(target, opname)
        if phase == "optimizer":
            kind = OpKind.OPTIMIZER
            p = int(scope[len("#param") :])
            scope = param_scopes[p]
        op = _Op(node.name, kind, scope, phase)
        if phase == "optimizer":
            op.colocation = p
        if phase == "backward":
            op.fwd_seq = custom.get(_FWD_SEQ_KEY)
        elif phase in ("forward", "loss"):
            op.seq = node.meta.get("seq_nr")
        # inputs: distinct producers, bytes actually read
        read: dict[torch.fx.Node, float] = {}
        for a in tensor_args:
            a_val = a.meta.get("val")
            if isinstance(a_val, torch.Tensor):
                read[a] = _storage_bytes(a_val)
            elif isinstance(a_val, (tuple, list)):
                read[a] = float(sum(_storage_bytes(t) for t in _tensors(a_val)))
        for a in scalar_args:
            read[a] = 0.0  # counted below: the bytes of the scalar
        idx = new_op(op)
        source: dict[torch.fx.Node, Any] = {}  # arg -> the (op, output) it really reads
        for a in read:
            src = ref.get(a)
            key = _storage_key(a.meta.get("val"))
            if key is not None and key in last_writer:
                w_idx, w_out, w_bytes = last_writer[key]
                if src != (w_idx, w_out):  # read through a reference older than the write
                    ops[w_idx].outputs.setdefault(w_out, w_bytes)
                    src = (w_idx, w_out)
            source[a] = src
            for r in src if isinstance(src, list) else [src]:
                if r is not None and r[0] != idx:
                    op.inputs[r] = tensor_bytes(r)
                    if a in scalar_args:
                        read[a] += tensor_bytes(r)
        op.bytes_read = float(sum(read.values())) if kind != OpKind.CONSTANT else 0.0
        # outputs
        if isinstance(val, torch.Tensor):
            op.outputs[0] = _nbytes(val)
            ref[node] = (idx, 0)
        elif isinstance(val, (tuple, list)):
            refs = []
            for j, v in enumerate(val):
                if isinstance(v, torch.Tensor):
                    op.outputs[j] = _nbytes(v)
                refs.append((idx, j))
            ref[node] = refs
        elif isinstance(val, _SYM_TYPES):  # a scalar read out of a tensor (.item())
            first = next((t for a in tensor_args for t in _tensors(a.meta.get("val"))), None)
            op.outputs[0] = float(first.element_size()) if first is not None else 8.0
            ref[node] = (idx, 0)
        else:
            ref[node] = None
        op.bytes_written = float(sum(op.outputs.values()))
        if isinstance(target, torch._ops.OpOverload):
            _record_writes(node, target._schema, idx, op, source, last_writer, tensor_bytes)
        if not op.outputs and isinstance(target, torch._ops.OpOverload):
            # in-place ops returning nothing (fused optimizers) write what they mutate
            mutated = [
                a
                for arg, a in zip(target._schema.arguments, node.args, strict=False)
                if arg.alias_info is not None and arg.alias_info.is_write
            ]
            op.bytes_written = float(
                sum(_nbytes(t) for m in mutated for t in _tensors(tree_map(_val_of, m)))
            )
        args_v, kwargs_v = tree_map(_val_of, (node.args, node.kwargs))
        try:
            op.flops = _op_flops(target, opname, kind, args_v, kwargs_v, val, optimizer)
        except Exception:  # an op whose arguments the formula does not expect
            op.flops = _numel(val)
    return _finish(ops, name, layer_rule)


def _val_of(a: Any) -> Any:
    return a.meta.get("val") if isinstance(a, torch.fx.Node) else a


def _record_writes(
    node: torch.fx.Node,
    schema: Any,
    idx: int,
    op: _Op,
    source: dict[torch.fx.Node, Any],
    last_writer: dict[StorageWeakRef, tuple[int, int, float]],
    tensor_bytes: Callable[[tuple[int, int]], float],
) -> None:
    """Make op ``idx`` the last writer of the memory of every argument its schema writes.

    Its output that aliases the argument (``copy_`` returns ``self``) stands for that memory
    after the write: later readers of the memory, through any view, read that output, which
    carries the whole tensor written into (a write into a slice carries the whole tensor the
    slice is cut from, as a view's consumers read its producer's whole output). A write with
    no aliasing output (an optimizer update) gets an extra output when something reads it.
    """
    n_returns = len(schema.returns)
    for k, arg in enumerate(schema.arguments):
        info = arg.alias_info
        if info is None or not info.is_write:
            continue
        value = _schema_arg(node, k, arg.name)
        for w in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(w, torch.fx.Node):
                continue
            w_val = w.meta.get("val")
            key = _storage_key(w_val)
            if key is None or not isinstance(w_val, torch.Tensor):
                continue
            base = source.get(w)
            nbytes = _nbytes(w_val)
            if isinstance(base, tuple):
                nbytes = max(nbytes, tensor_bytes(base))
            out = next(
                (
                    j
                    for j, ret in enumerate(schema.returns)
                    if ret.alias_info is not None and ret.alias_info.before_set & info.before_set
                ),
                None,
            )
            if out is not None and out in op.outputs:
                op.outputs[out] = max(op.outputs[out], nbytes)
            else:
                out = n_returns + k
            last_writer[key] = (idx, out, nbytes)


def _drop_dead_factories(ops: list[_Op]) -> list[_Op]:
    """Remove tensor factories nothing reads (e.g. the empty reserve of batch norm)."""
    used = {src for op in ops for src, _ in op.inputs}
    keep = [
        i
        for i, op in enumerate(ops)
        if not (op.kind == OpKind.CONSTANT and op.phase != "param" and i not in used)
    ]
    if len(keep) == len(ops):
        return ops
    new_index = {old: new for new, old in enumerate(keep)}
    kept = [ops[i] for i in keep]
    for op in kept:
        op.inputs = {(new_index[src], out): b for (src, out), b in op.inputs.items()}
    return kept


def _finish(
    ops: list[_Op],
    name: str,
    layer_rule: Callable[[Iterable[str]], Callable[[str], int | None]],
) -> OpGraph:
    """Attribute backward scopes, assign layers and build the OpGraph."""
    ops = _drop_dead_factories(ops)
    n = len(ops)
    preds: list[list[int]] = [sorted({src for src, _ in op.inputs}) for op in ops]
    succs: list[list[int]] = [[] for _ in range(n)]
    for i, ps in enumerate(preds):
        for p in ps:
            succs[p].append(i)
    # forward op of each backward op, by sequence number (first forward op with that number)
    by_seq: dict[int, int] = {}
    for i, op in enumerate(ops):
        if op.seq is not None and op.seq >= 0 and op.seq not in by_seq:
            by_seq[op.seq] = i
    fwd_of = np.full(n, -1, np.int64)
    for i, op in enumerate(ops):
        if op.phase == "backward" and op.fwd_seq is not None and op.fwd_seq in by_seq:
            fwd_of[i] = by_seq[op.fwd_seq]
            op.scope = ops[fwd_of[i]].scope
    # backward ops autograd ran between nodes (gradient accumulation, the seed): the scope of
    # the gradient they consume, else of the loss
    for i, op in enumerate(ops):
        if op.phase == "backward" and fwd_of[i] < 0:
            producer = next((p for p in preds[i] if ops[p].phase == "backward"), None)
            if producer is not None:
                fwd_of[i] = fwd_of[producer]
                op.scope = ops[producer].scope
            else:
                op.scope = _LOSS_SCOPE
    # layers: the rule on forward scopes, then dataflow for ops the rule leaves without one
    forward_scopes = [op.scope for op in ops if op.phase in ("forward", "loss")]
    rule = layer_rule(forward_scopes)
    layer = np.full(n, -1, np.int64)
    for i, op in enumerate(ops):
        if op.phase in ("forward", "loss", "param"):
            got = rule(op.scope) if op.phase != "loss" else None
            layer[i] = -1 if got is None else got
    fwdish = [i for i, op in enumerate(ops) if op.phase in ("forward", "loss", "param", "input")]
    # Downstream: the smallest layer among the nearest labelled forward consumers.
    down = layer.copy()
    for i in reversed(fwdish):
        if down[i] < 0:
            cands = [down[s] for s in succs[i] if ops[s].phase in ("forward", "loss")]
            cands = [c for c in cands if c >= 0]
            if cands:
                down[i] = min(cands)
    # Then in program order: the largest layer among the producers (a head or the loss sits
    # with the last layer it reads), else the downstream layer (an embedding sits with the
    # first layer that reads it).
    for i in fwdish:
        if layer[i] < 0:
            cands = [layer[p] for p in preds[i] if layer[p] >= 0]
            layer[i] = max(cands) if cands else down[i]
    # Whatever is still unlabelled (a parameter or input that only feeds a head, a constant)
    # joins its first labelled consumer.
    for i in reversed(fwdish):
        if layer[i] < 0:
            cands = [layer[s] for s in succs[i] if layer[s] >= 0]
            if cands:
                layer[i] = min(cands)
    for i, op in enumerate(ops):
        if op.phase == "backward":
            if fwd_of[i] >= 0:
                layer[i] = layer[fwd_of[i]]
            else:
                lo = [layer[p] for p in preds[i] if layer[p] >= 0]
                layer[i] = max(lo) if lo else -1
        elif op.phase == "optimizer":
            layer[i] = next((layer[p] for p in preds[i] if ops[p].kind == OpKind.PARAMETER), -1)
    # Still unlabelled: an op of a labelled scope that neither reads nor feeds labelled ops
    # (a batch-norm step counter) joins its scope; the rest (the constant that seeds the
    # backward pass) joins its first labelled consumer.
    scope_layer: dict[str, int] = {}
    for i, op in enumerate(ops):
        if layer[i] >= 0:
            scope_layer.setdefault(op.scope, int(layer[i]))
    for i, op in enumerate(ops):
        if layer[i] < 0 and op.scope in scope_layer and op.scope not in ("", _LOSS_SCOPE):
            layer[i] = scope_layer[op.scope]
    for i in reversed(range(n)):
        if layer[i] < 0:
            cands = [layer[s] for s in succs[i] if layer[s] >= 0]
            if cands:
                layer[i] = min(cands)
    src: list[int] = []
    dst: list[int] = []
    ebytes: list[float] = []
    etensor: list[int] = []
    for i, op in enumerate(ops):
        for (p, out), b in sorted(op.inputs.items()):
            src.append(p)
            dst.append(i)
            ebytes.append(b)
            etensor.append(out)
    return OpGraph(
        name=name,
        op_names=[op.name for op in ops],
        op_kind=[int(op.kind) for op in ops],
        flops=[op.flops for op in ops],
        bytes_read=[op.bytes_read for op in ops],
        bytes_written=[op.bytes_written for op in ops],
        persistent_bytes=[op.persistent for op in ops],
        scope=[op.scope for op in ops],
        layer=layer,
        colocation=[op.colocation for op in ops],
        edge_src=np.array(src, np.int64),
        edge_dst=np.array(dst, np.int64),
        edge_bytes=np.array(ebytes, np.float64),
        edge_tensor=np.array(etensor, np.int64),
    )
