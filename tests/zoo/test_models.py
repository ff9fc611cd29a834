"""Tests of the benchmark zoo's model definitions (go_gym.zoo.models)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.func import functional_call
from torch.fx import GraphModule
from torch.fx.experimental.proxy_tensor import make_fx

from go_gym.zoo.models import (
    MODELS,
    PAPER_CONFIGS,
    QUICK_CONFIGS,
    QUICK_TRAIN_CONFIGS,
    ModelSpec,
    TensorSpec,
    build_workload,
    gnmt,
    inception_v3,
    layer_index,
    rnnlm,
    transformer_xl,
    wavenet,
)
from go_gym.zoo.models._lstm import LSTMCell

QUICK_OP_BUDGET = 3_000


def trace_training_step(spec: ModelSpec) -> GraphModule:
    """Trace loss and parameter gradients of one step with fake tensors (no real memory).

    Mirrors what the importer does: ``functional_call`` over parameters and buffers passed as
    graph inputs, ``torch.autograd.grad`` for the backward pass.
    """
    params = dict(spec.model.named_parameters())
    buffers = dict(spec.model.named_buffers())

    def step(params, buffers, *xs):
        def fwd(*args):
            return functional_call(spec.model, {**params, **buffers}, args)

        loss = spec.step_loss(fwd, *xs)
        return loss, torch.autograd.grad(loss, list(params.values()))

    step._orig_mod = spec.model  # lets make_fx record each op's module path
    return make_fx(step, tracing_mode="fake", record_module_stack=True)(
        params, buffers, *spec.example_inputs("meta")
    )


def aten_ops(gm: GraphModule) -> list[torch.fx.Node]:
    """The graph's aten operator calls (no placeholders, outputs or tuple getitems)."""
    return [
        n
        for n in gm.graph.nodes
        if n.op == "call_function" and isinstance(n.target, torch._ops.OpOverload)
    ]


def real_step(spec: ModelSpec, seed: int = 0):
    """Run one real forward and backward; return ``(outputs, loss)``."""
    inputs = spec.make_inputs(seed)
    targets = spec.make_targets(seed)
    outputs = spec.model(*inputs)
    loss = spec.loss_fn(outputs, *targets)
    loss.backward()
    return outputs, loss


# ---------------------------------------------------------------------------------------------
# Registry


def test_registry_covers_the_paper_benchmark():
    assert set(MODELS) == {
        "rnnlm",
        "gnmt",
        "transformer_xl",
        "inception_v3",
        "amoebanet",
        "wavenet",
    }
    assert len(PAPER_CONFIGS) == 14
    assert {f for f, _ in PAPER_CONFIGS.values()} == set(MODELS)
    assert {f for f, _ in QUICK_CONFIGS.values()} == set(MODELS)
    assert set(PAPER_CONFIGS).isdisjoint(QUICK_CONFIGS)
    assert {f for f, _ in QUICK_TRAIN_CONFIGS.values()} == set(MODELS)
    assert set(QUICK_TRAIN_CONFIGS).isdisjoint({**PAPER_CONFIGS, **QUICK_CONFIGS})
    # a training variant is another size of a quick workload, never one of them
    quick = list(QUICK_CONFIGS.values())
    assert all(config not in quick for config in QUICK_TRAIN_CONFIGS.values())


def test_unknown_workload_names_the_known_ones():
    with pytest.raises(KeyError, match="gnmt-8"):
        build_workload("gnmt-16")


@pytest.mark.parametrize("workload_id", sorted(PAPER_CONFIGS))
def test_paper_configs_build_on_meta(workload_id):
    spec = build_workload(workload_id, device="meta")
    family, kwargs = PAPER_CONFIGS[workload_id]
    assert spec.family == family
    assert spec.model.training
    assert all(p.device.type == "meta" for p in spec.model.parameters())
    for key, value in kwargs.items():
        assert spec.config[key] == value
    xs = spec.example_inputs()
    assert len(xs) == spec.n_inputs + len(spec.target_specs)
    assert all(x.device.type == "meta" for x in xs)


# ---------------------------------------------------------------------------------------------
# Quick configs: real forward/backward and fake tracing


def _expected_output_shape(spec: ModelSpec) -> tuple[int, ...]:
    c = spec.config
    if spec.family in ("rnnlm",):
        return (c["batch_size"], c["seq_len"], c["vocab_size"])
    if spec.family == "gnmt":
        return (c["batch_size"], c["tgt_len"], c["vocab_size"])
    if spec.family == "transformer_xl":
        return (c["tgt_len"], c["batch_size"], c["vocab_size"])
    if spec.family in ("inception_v3", "amoebanet"):
        return (c["batch_size"], c["num_classes"])
    assert spec.family == "wavenet"
    return (c["batch_size"], c["classes"], c["seq_len"])


@pytest.mark.parametrize("workload_id", sorted(QUICK_CONFIGS))
def test_quick_config_runs_forward_and_backward(workload_id):
    torch.manual_seed(0)
    spec = build_workload(workload_id)
    outputs, loss = real_step(spec)
    main = outputs[0] if isinstance(outputs, tuple) else outputs
    assert tuple(main.shape) == _expected_output_shape(spec)
    assert loss.ndim == 0 and torch.isfinite(loss)
    missing = [n for n, p in spec.model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("workload_id", sorted(QUICK_CONFIGS))
def test_quick_config_traces_with_fake_tensors_under_budget(workload_id):
    spec = build_workload(workload_id, device="meta")
    gm = trace_training_step(spec)
    ops = aten_ops(gm)
    assert 100 < len(ops) < QUICK_OP_BUDGET
    # Every parameter gets a gradient output, and forward ops carry module scopes.
    n_params = len(list(spec.model.parameters()))
    (out_node,) = [n for n in gm.graph.nodes if n.op == "output"]
    _loss_out, *grads_out = out_node.args[0]  # make_fx flattens (loss, grads)
    assert len(grads_out) == n_params and all(g is not None for g in grads_out)
    scopes = [
        list(n.meta["nn_module_stack"].values())[-1][0]
        for n in ops
        if n.meta.get("nn_module_stack")
    ]
    assert len(scopes) > len(ops) // 4
    assert any(layer_index(s) is not None for s in scopes)


def test_inception_quick_structure_matches_the_full_network():
    quick = build_workload("inception-v3-quick", device="meta")
    full = build_workload("inception-v3-b32", device="meta")
    names = {type(m).__name__ for m in quick.model.modules()}
    assert {"InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE"} <= names
    assert len(quick.model.layers) == len(full.model.layers) == len(inception_v3.LAYER_NAMES)


# ---------------------------------------------------------------------------------------------
# Parameter counts against hand-computed values


def test_lstm_cell_parameter_count():
    cell = LSTMCell(7, 5)
    assert sum(p.numel() for p in cell.parameters()) == 4 * 5 * (7 + 5 + 1)


def test_rnnlm_parameter_count_by_hand():
    spec = build_workload("rnnlm-2", device="meta")
    v, h, n = 10_000, 1500, 2
    embedding = v * h
    cells = n * 4 * h * (h + h + 1)
    softmax = h * v + v
    assert spec.parameter_count() == embedding + cells + softmax == 66_022_000


def test_gnmt_parameter_count_by_hand():
    v, h, n = 100, 16, 3
    spec = gnmt.build(n, batch_size=2, src_len=3, tgt_len=3, hidden_size=h, vocab_size=v)
    lstm = lambda i: 4 * h * (i + h + 1)  # noqa: E731
    encoder = v * h + 2 * lstm(h) + lstm(2 * h) + lstm(h)  # bi layer, 2h-wide layer 1, layer 2
    attention = 2 * h * h + h + 1 + h  # memory + query layers, v, g, b
    decoder = v * h + n * lstm(2 * h) + attention + h * v
    assert spec.parameter_count() == encoder + decoder


def test_inception_v3_parameter_count_matches_reference():
    # torchvision's inception_v3(aux_logits=True, num_classes=1000) has 27,161,264 parameters.
    spec = build_workload("inception-v3-b32", device="meta")
    assert spec.parameter_count() == 27_161_264
    no_aux = inception_v3.build(aux_logits=False, device="meta")
    assert no_aux.parameter_count() == 23_834_568


def test_wavenet_parameter_count_by_hand():
    r, d, s, q, k, n = 4, 6, 10, 16, 2, 6
    spec = wavenet.build(
        2,
        n,
        batch_size=1,
        seq_len=8,
        residual_channels=r,
        dilation_channels=d,
        skip_channels=s,
        classes=q,
        device="meta",
    )
    layer = 2 * (r * d * k + d) + (d * r + r) + (d * s + s)
    last = layer - (d * r + r)
    expected = (q * r * k + r) + (n - 1) * layer + last + (s * s + s) + (s * q + q)
    assert spec.parameter_count() == expected


# ---------------------------------------------------------------------------------------------
# Semantics: causality, bidirectionality, the relative-position shift


def test_wavenet_is_causal():
    torch.manual_seed(0)
    spec = wavenet.build(
        2, 6, batch_size=1, seq_len=64, residual_channels=4, dilation_channels=4, skip_channels=8
    )
    spec.model.eval().double()  # float64: the longest path's influence is below float32 eps
    (x,) = spec.make_inputs(seed=3)
    y = spec.model(x)
    p = 25
    x2 = x.clone()
    x2[0, p] = (x[0, p] + 1) % spec.config["classes"]
    y2 = spec.model(x2)
    assert torch.equal(y[..., :p], y2[..., :p])
    assert not torch.allclose(y[..., p:], y2[..., p:])
    # The receptive field reaches exactly back to t - receptive_field + 1.
    rf = spec.config["receptive_field"]
    assert rf == 2 * (2**3 - 1) + 2
    # (exact comparisons: the influence through the longest path is tiny but non-zero)
    assert torch.equal(y[..., p + rf :], y2[..., p + rf :])
    assert not torch.equal(y[..., p + rf - 1], y2[..., p + rf - 1])


def test_transformer_xl_is_causal_within_the_segment():
    torch.manual_seed(0)
    spec = build_workload("transformer-xl-quick")
    spec.model.eval()
    tokens, mems = spec.make_inputs(seed=1)
    y = spec.model(tokens, mems)
    p = 9
    tokens2 = tokens.clone()
    tokens2[p] = (tokens[p] + 1) % spec.config["vocab_size"]
    y2 = spec.model(tokens2, mems)
    assert torch.allclose(y[:p], y2[:p])
    assert not torch.allclose(y[p:], y2[p:])
    # The memory is visible to every position.
    y3 = spec.model(tokens, mems + 1.0)
    assert not torch.allclose(y[-1], y3[-1])


def test_gnmt_encoder_is_bidirectional_and_decoder_causal():
    torch.manual_seed(0)
    spec = build_workload("gnmt-quick")
    spec.model.eval()
    src, tgt_in = spec.make_inputs(seed=2)
    y = spec.model(src, tgt_in)
    src2 = src.clone()
    src2[:, -1] = (src[:, -1] + 1) % spec.config["vocab_size"]
    # Changing the last source token changes every decoder step (through the bw layer).
    assert not torch.allclose(spec.model(src2, tgt_in)[:, 0], y[:, 0])
    tgt2 = tgt_in.clone()
    tgt2[:, 3] = (tgt_in[:, 3] + 1) % spec.config["vocab_size"]
    y2 = spec.model(src, tgt2)
    assert torch.allclose(y[:, :3], y2[:, :3])
    assert not torch.allclose(y[:, 3:], y2[:, 3:])


def test_rel_shift_aligns_relative_distances():
    qlen, mlen = 4, 3
    klen = qlen + mlen
    x = torch.randn(qlen, klen, 2, 1)
    shifted = transformer_xl.rel_shift(x)
    for i in range(qlen):
        for j in range(i + mlen + 1):  # the unmasked keys
            # column c of x is relative distance klen - 1 - c; key j is at distance i + mlen - j
            c = klen - 1 - (i + mlen - j)
            assert torch.equal(shifted[i, j], x[i, c])


def test_rnnlm_unrolls_one_cell_call_per_layer_and_step():
    spec = rnnlm.build(3, batch_size=2, seq_len=4, hidden_size=8, vocab_size=11, device="meta")
    gm = trace_training_step(spec)
    sigmoids = [n for n in aten_ops(gm) if n.target == torch.ops.aten.sigmoid.default]
    assert len(sigmoids) == 3 * 4 * 3  # three gates, per layer, per step


# ---------------------------------------------------------------------------------------------
# Scope convention and records


def test_layer_index_is_the_first_integer_component():
    assert layer_index("encoder.layers.3.cell.kernel") == 3
    assert layer_index("layers.12.attn.qkv_net") == 12
    assert layer_index("cells.4.ops.2") == 4
    assert layer_index("decoder.softmax.proj") is None
    assert layer_index("") is None
    assert layer_index("Mixed_5b") is None


@pytest.mark.parametrize("workload_id", sorted(PAPER_CONFIGS))
def test_repeated_blocks_carry_layer_indices(workload_id):
    spec = build_workload(workload_id, device="meta")
    indices = {layer_index(name) for name, _ in spec.model.named_parameters()} - {None}
    c = spec.config
    expected = {
        "rnnlm": c.get("n_layers"),
        "gnmt": c.get("n_layers"),
        "transformer_xl": c.get("n_layers"),
        "wavenet": c.get("n_layers"),
        "amoebanet": c.get("n_cells"),
        "inception_v3": len(inception_v3.LAYER_NAMES) - 2,  # two parameter-free max pools
    }[spec.family]
    assert len(indices) == expected
    assert indices <= set(range(max(indices) + 1))


def test_specs_are_read_only_and_validated():
    spec = build_workload("wavenet-quick", device="meta")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.family = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.config["seq_len"] = 3  # type: ignore[index]
    with pytest.raises(ValueError, match="expected 1 inputs"):
        spec.step_loss(spec.model, *spec.example_inputs()[:1])
    with pytest.raises(ValueError, match="high"):
        TensorSpec("labels", (2,), torch.int64)
    with pytest.raises(ValueError, match="> 0"):
        TensorSpec("x", (0, 3))


@pytest.mark.parametrize(
    ("builder", "kwargs", "message"),
    [
        (gnmt.build, {"n_layers": 1}, "n_layers must be >= 2"),
        (wavenet.build, {"n_stacks": 4, "n_layers": 18}, "multiple"),
        (inception_v3.build, {"image_size": 200}, ">= 299"),
        (rnnlm.build, {"seq_len": 0}, ">= 1"),
    ],
)
def test_bad_configs_raise_clear_errors(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs, device="meta")


# ---------------------------------------------------------------------------------------------
# Full-size traces (minutes): run with -m slow


@pytest.mark.slow
@pytest.mark.parametrize("workload_id", sorted(PAPER_CONFIGS))
def test_paper_config_traces(workload_id):
    spec = build_workload(workload_id, device="meta")
    ops = aten_ops(trace_training_step(spec))
    assert len(ops) > 400
    if workload_id == "gnmt-8":
        assert len(ops) > 40_000
