"""The GO policy network: GraphSAGE encoder, graph-conditioned segment-recurrent attention.

One forward pass reads one graph (no batch dimension: GO decides for one graph at a time,
and a graph of 33k ops is its own batch) and returns an (n_ops, a) matrix of logits per
task, so the decisions for every node are sampled at once (the GO setting, not
autoregressive).

Architecture (sizes are `GOConfig` fields, defaults in brackets):

1. **Node input.** The 15 node features of `go_gym.envs.encoding`, plus the mean features
   of each node's incoming and outgoing edges (4 more), go through a linear map to
   ``hidden`` [64]; an op-kind embedding is added.
2. **GraphSAGE** [3 layers]. Each layer mixes a node's state with the *separate* means of
   its predecessors' and successors' states (direction matters in a dataflow graph),
   ``h <- h + relu(LN(W_self h + W_pred mean_pred(h) + W_succ mean_succ(h)))``. The means
   are sparse (n x n) products built once per graph, so a layer costs O(E * hidden).
3. **Graph embedding.** Masked mean and max pooling of the node states, plus the graph
   features and the mean device features, through an MLP. Every attention layer that
   follows is modulated by it (FiLM: ``h * (1 + gamma(g)) + beta(g)``), the paper's
   *parameter superposition*: one set of weights, specialised per graph.
4. **Segment-recurrent attention** [2 layers per task, 4 heads, segments of 128]. Node
   states are put in topological order and cut into segments of ``segment`` nodes. In each
   layer, a segment attends to itself and to a memory: the previous segment's input to
   the same layer, detached (no gradient through the memory), exactly Transformer-XL's
   segment-level recurrence. Because layer l of segment s depends only on layer l-1 of
   segments s and s-1, all segments of a layer are computed at once, which is the same
   function as running them one after another, without a Python loop over segments.
   Attention inside a segment is bidirectional (all decisions are made together; nothing
   is generated left to right). Positions are learned embeddings over the 2S-long window
   (memory then segment). Memory and time are O(n * S) per layer, not O(n^2).
5. **Tasks.** One attention stack and head per task, in the order placement, scheduling
   (priority), fusion. Each pass starts from the previous pass's output plus the
   embedding of the previous task's decision, taken in expectation under its
   probabilities (``softmax(logits) @ E``): the later task is conditioned on what the earlier
   one decides while a single forward still yields all logits, so K joint decisions are
   sampled from one forward (one-shot) and their log-probability factorises over nodes.
   Those are the logits that are sampled: with tied roles the placement logits are first
   averaged per role, and a warm start's fixed offsets (the trainer's prior) are added, in
   the forward, before the next pass reads them (`GOPolicy.forward`).
6. **Heads.** Placement logits are scaled dot products of node queries with device keys
   (a linear map of the device features plus a device-index embedding), so one network
   serves clusters with any number of devices up to ``max_devices``; with tree actions
   (`GOConfig.placement_actions`) a key is the index embedding alone, of an offset.
   Priority and fusion logits come from a linear head over ``max_choices`` levels, cut to
   the env's levels.

Padded nodes (multi-graph envs pad to ``max_nodes``) are removed before the network and
come back, via `padded_logits`, as rows that put all probability on choice 0: they never
change a real node's logits and add exactly zero to log-probabilities and entropy.

Devices: the network runs wherever its parameters and its `GraphInput` are (``prepare(...,
device=)``, ``policy.to(device)``); every tensor it makes follows its inputs' device.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from go_gym.envs.encoding import N_DEVICE_FEATURES, N_GRAPH_FEATURES, N_NODE_FEATURES
from go_gym.opkinds import N_OP_KINDS

#: The tasks a GO policy can decide, in the order the joint passes run.
TASK_ORDER: tuple[str, ...] = ("placement", "priority", "fusion")

#: Meanings of a placement choice (`GOConfig.placement_actions`).
PLACEMENT_ACTIONS: tuple[str, ...] = ("device", "tree", "tree-solo")

#: Logit of the choices a padded node can never take (finite, so 0 * it stays 0).
MASKED_LOGIT = -1e9

_EDGE_AGG = 2 * 2  # mean incoming and mean outgoing edge features

#: Node-feature column of the layer label (`go_gym.envs.encoding`), read by the layer head.
LAYER_COLUMN = 10


@dataclass(frozen=True)
class GOConfig:
    """Sizes of a `GOPolicy` (saved with every checkpoint, so it must hold plain types).

    Attributes:
        hidden: Width of node states everywhere.
        sage_layers: GraphSAGE layers.
        attn_layers: Attention layers per task pass.
        heads: Attention heads (must divide ``hidden``).
        segment: Nodes per attention segment (S); memory is the previous segment.
        ffn: Width of the attention blocks' feed-forward layer.
        max_devices: Largest cluster the placement head can address.
        max_choices: Largest number of priority or fusion levels.
        tasks: Task passes the network has, a sub-sequence of `TASK_ORDER`.
        layer_head: Initial scale of the layer head (0: no head). The head adds to each
            op's placement logits a linear map of sinusoidal encodings of its layer label,
            initialised at random at this scale, so that a fresh policy already leans the
            ops of one layer to the same devices and different layers to different ones.
        layer_frequencies: Frequencies of those encodings (``pi * 2**k``, k < this).
        placement_actions: What a placement logit's choice means: ``"device"`` (the
            paper's: the op's device) or ``"tree"`` (an offset from the device of the op's
            parent in a maximum spanning tree of the graph, `agents.go.tree`), so one
            choice moves a whole subtree of heavily connected ops at once, or
            ``"tree-solo"``: those offsets, and D - 1 more choices that move the op alone
            (2D - 1 choices, so at most ``(max_devices + 1) // 2`` devices).
        tie_roles: With tree actions, give the ops that play one role in repeated blocks
            (the same op of every LSTM layer, `agents.go.roles`) one placement choice,
            sampled from the mean of their logits, so one offset moves the same subtree
            in every block. The network is unchanged; the trainer groups its logits.
    """

    hidden: int = 64
    sage_layers: int = 3
    attn_layers: int = 2
    heads: int = 4
    segment: int = 128
    ffn: int = 128
    max_devices: int = 16
    max_choices: int = 32
    tasks: tuple[str, ...] = field(default=("placement",))
    layer_head: float = 0.0
    layer_frequencies: int = 4
    placement_actions: str = "device"
    tie_roles: bool = False

    def __post_init__(self) -> None:
        for name, least in (
            ("hidden", 1),
            ("sage_layers", 0),
            ("attn_layers", 1),
            ("heads", 1),
            ("segment", 1),
            ("ffn", 1),
            ("max_devices", 1),
            ("max_choices", 1),
            ("layer_frequencies", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise ValueError(f"GOConfig.{name} must be an integer >= {least}, got {value!r}")
        if self.hidden % self.heads:
            raise ValueError(f"heads={self.heads} must divide hidden={self.hidden}")
        head = self.layer_head
        if isinstance(head, bool) or not isinstance(head, numbers.Real) or not math.isfinite(head):
            raise ValueError(f"GOConfig.layer_head must be a finite number >= 0, got {head!r}")
        if not isinstance(self.tie_roles, (bool, np.bool_)):
            raise ValueError(f"GOConfig.tie_roles must be True or False, got {self.tie_roles!r}")
        if isinstance(self.tasks, str):
            raise ValueError(f"tasks must be a sequence of task names, got {self.tasks!r}")
        tasks = tuple(self.tasks)
        object.__setattr__(self, "tasks", tasks)
        if not tasks or any(t not in TASK_ORDER for t in tasks):
            raise ValueError(f"tasks must be a non-empty subset of {TASK_ORDER}, got {tasks}")
        if list(tasks) != [t for t in TASK_ORDER if t in tasks]:
            raise ValueError(f"tasks must follow the order {TASK_ORDER}, got {tasks}")
        if self.segment < 1 or self.sage_layers < 0 or self.attn_layers < 1:
            raise ValueError("need segment >= 1, sage_layers >= 0, attn_layers >= 1")
        if self.layer_head < 0 or self.layer_frequencies < 1:
            raise ValueError("need layer_head >= 0 and layer_frequencies >= 1")
        if self.placement_actions not in PLACEMENT_ACTIONS:
            raise ValueError(
                f"placement_actions must be one of {PLACEMENT_ACTIONS}, "
                f"got {self.placement_actions!r}"
            )
        if self.layer_head > 0 and self.placement_actions != "device":
            raise ValueError("layer_head leans devices; it needs placement_actions='device'")
        if self.tie_roles and not self.tree_actions:
            raise ValueError("tie_roles ties offsets; it needs tree placement actions")

    @property
    def tree_actions(self) -> bool:
        """Whether placement choices are tree actions (`agents.go.tree`), not devices."""
        return self.placement_actions != "device"

    def placement_choices(self, n_devices: int) -> int:
        """Placement choices per node on ``n_devices`` devices: the devices, or the tree
        actions (D offsets, plus D - 1 solo moves with ``"tree-solo"``)."""
        return 2 * n_devices - 1 if self.placement_actions == "tree-solo" else n_devices

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (for ``torch.load(weights_only=True)``)."""
        out = asdict(self)
        out["tasks"] = list(self.tasks)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GOConfig:
        """Inverse of `to_dict`; unknown keys are an error (a checkpoint of another model)."""
        if not isinstance(data, dict):
            raise ValueError(f"a GOConfig is a dict of its fields, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown GOConfig fields in checkpoint: {sorted(unknown)}")
        values = dict(data)
        if "tasks" in values:
            values["tasks"] = tuple(values["tasks"])
        return cls(**values)


@dataclass
class GraphInput:
    """One graph as the network reads it: real nodes only, tensors built once per graph.

    Attributes:
        n: Real nodes.
        max_nodes: Padded length of the env's observation (rows of `padded_logits`).
        x: (n, 19) node features plus mean in/out edge features.
        kind: (n,) op-kind ids.
        pred_mean: (n, n) sparse, row i averages over the predecessors of i.
        succ_mean: (n, n) sparse, row i averages over the successors of i.
        order: (n,) nodes in topological order.
        device: (D, 4) device features.
        graph: (5,) graph features.
    """

    n: int
    max_nodes: int
    x: torch.Tensor
    kind: torch.Tensor
    pred_mean: torch.Tensor
    succ_mean: torch.Tensor
    order: torch.Tensor
    device: torch.Tensor
    graph: torch.Tensor

    @property
    def n_devices(self) -> int:
        """Devices of the cluster the graph is placed on."""
        return int(self.device.shape[0])

    def to(self, device: torch.device | str) -> GraphInput:
        """The same graph with every tensor on ``device`` (itself if already there)."""
        tensors = ("x", "kind", "pred_mean", "succ_mean", "order", "device", "graph")
        return replace(self, **{name: getattr(self, name).to(device) for name in tensors})


def _mean_matrix(rows: NDArray[np.int64], cols: NDArray[np.int64], n: int) -> torch.Tensor:
    """Sparse (n, n) matrix whose row r averages the columns listed for it."""
    count = np.bincount(rows, minlength=n).astype(np.float32)
    values = 1.0 / np.maximum(count[rows], 1.0)
    index = torch.from_numpy(np.stack([rows, cols]).astype(np.int64))
    values_t = torch.from_numpy(values.astype(np.float32))
    return torch.sparse_coo_tensor(
        index, values_t, (n, n), device=index.device, check_invariants=True
    ).coalesce()


def _mean_by(index: NDArray[np.int64], values: NDArray[np.float32], n: int) -> NDArray:
    """Per-node mean of edge ``values`` grouped by ``index`` (zeros for nodes without)."""
    out = np.zeros((n, values.shape[1]), np.float64)
    np.add.at(out, index, values)
    count = np.bincount(index, minlength=n)[:, None]
    return (out / np.maximum(count, 1)).astype(np.float32)


def prepare(
    observation: dict[str, Any],
    topo_order: NDArray[np.integer] | None = None,
    device: torch.device | str = "cpu",
) -> GraphInput:
    """A `GraphInput` from a go_gym observation (padded or not).

    Real nodes are the first ``node_mask.sum()`` rows (the encoding pads at the end).
    Without ``topo_order`` the order is recovered from node feature 7 (topological rank /
    n_ops), which is exact in float32 for graphs far beyond the zoo's largest.

    Args:
        observation: The env's observation Dict (NumPy arrays).
        topo_order: (n,) the graph's topological order, when the caller has it.
        device: Where the tensors go (built on the CPU from NumPy, then moved once).
    """
    node_mask = np.asarray(observation["node_mask"]).astype(bool)
    n = int(node_mask.sum())
    if n == 0 or not node_mask[:n].all():
        raise ValueError("observation must have at least one real node, padding at the end")
    feats = np.asarray(observation["node_features"], np.float32)[:n]
    edge_mask = np.asarray(observation["edge_mask"]).astype(bool)
    edges = np.asarray(observation["edge_index"])[:, edge_mask].astype(np.int64)
    ef = np.asarray(observation["edge_features"], np.float32)[edge_mask]
    src, dst = edges[0], edges[1]
    if edges.size and (edges.max() >= n or edges.min() < 0):
        raise ValueError("an unmasked edge points at a padded node")
    x = np.concatenate([feats, _mean_by(dst, ef, n), _mean_by(src, ef, n)], axis=1)
    if topo_order is None:
        order = np.argsort(feats[:, 7], kind="stable")
    else:
        order = np.asarray(topo_order, np.int64)
        if order.shape != (n,):
            raise ValueError(f"topo_order has shape {order.shape}, the graph has {n} nodes")
    return GraphInput(
        n=n,
        max_nodes=int(node_mask.shape[0]),
        x=torch.from_numpy(x),
        kind=torch.from_numpy(np.asarray(observation["op_kind"])[:n].astype(np.int64)),
        pred_mean=_mean_matrix(dst, src, n),
        succ_mean=_mean_matrix(src, dst, n),
        order=torch.from_numpy(order.astype(np.int64)),
        device=torch.from_numpy(np.array(observation["device_features"], np.float32)),
        graph=torch.from_numpy(np.array(observation["graph_features"], np.float32)),
    ).to(device)


class SAGELayer(nn.Module):
    """GraphSAGE with separate mean aggregation over predecessors and successors."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.self_lin = nn.Linear(hidden, hidden)
        self.pred_lin = nn.Linear(hidden, hidden, bias=False)
        self.succ_lin = nn.Linear(hidden, hidden, bias=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, inp: GraphInput) -> torch.Tensor:
        pred = torch.sparse.mm(inp.pred_mean, h)
        succ = torch.sparse.mm(inp.succ_mean, h)
        return h + F.relu(self.norm(self.self_lin(h) + self.pred_lin(pred) + self.succ_lin(succ)))


class SegmentAttentionLayer(nn.Module):
    """One Transformer-XL-style layer over segments, with FiLM from the graph embedding."""

    def __init__(self, cfg: GOConfig) -> None:
        super().__init__()
        h, s = cfg.hidden, cfg.segment
        self.heads = cfg.heads
        self.segment = s
        self.norm_q = nn.LayerNorm(h)
        self.norm_kv = nn.LayerNorm(h)
        self.q = nn.Linear(h, h)
        self.kv = nn.Linear(h, 2 * h)
        self.out = nn.Linear(h, h)
        self.pos = nn.Parameter(torch.randn(2 * s, h) * 0.02)  # memory positions, then segment
        self.norm_ff = nn.LayerNorm(h)
        self.ff = nn.Sequential(nn.Linear(h, cfg.ffn), nn.GELU(), nn.Linear(cfg.ffn, h))
        self.film = nn.Linear(h, 2 * h)
        nn.init.zeros_(self.film.weight)  # start as the identity modulation
        nn.init.zeros_(self.film.bias)

    def forward(
        self, x: torch.Tensor, valid: torch.Tensor, graph_emb: torch.Tensor
    ) -> torch.Tensor:
        """``x`` (n_seg, S, H) in topological order; ``valid`` (n_seg, S) real positions."""
        n_seg, s, h = x.shape
        memory = torch.cat([torch.zeros_like(x[:1]), x[:-1]]).detach()
        mem_valid = torch.cat([torch.zeros_like(valid[:1]), valid[:-1]])
        window = torch.cat([memory, x], dim=1) + self.pos  # (n_seg, 2S, H)
        keys_valid = torch.cat([mem_valid, valid], dim=1)  # (n_seg, 2S)
        q = self.q(self.norm_q(x + self.pos[s:]))
        k, v = self.kv(self.norm_kv(window)).chunk(2, dim=-1)
        d = h // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(n_seg, t.shape[1], self.heads, d).transpose(1, 2)

        mask = keys_valid[:, None, None, :]  # (n_seg, 1, 1, 2S), True = attend
        att = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
        x = x + self.out(att.transpose(1, 2).reshape(n_seg, s, h))
        x = x + self.ff(self.norm_ff(x))
        gamma, beta = self.film(graph_emb).chunk(2, dim=-1)
        return x * (1 + gamma) + beta


class GOPolicy(nn.Module):
    """The GO network; `forward` maps a `GraphInput` to per-task (n, a) logits."""

    def __init__(self, config: GOConfig | None = None) -> None:
        super().__init__()
        cfg = config or GOConfig()
        self.config = cfg
        h = cfg.hidden
        self.node_in = nn.Linear(N_NODE_FEATURES + _EDGE_AGG, h)
        self.kind_emb = nn.Embedding(N_OP_KINDS, h)
        self.sage = nn.ModuleList(SAGELayer(h) for _ in range(cfg.sage_layers))
        self.graph_mlp = nn.Sequential(
            nn.Linear(2 * h + N_GRAPH_FEATURES + N_DEVICE_FEATURES, h), nn.GELU(), nn.Linear(h, h)
        )
        self.task_emb = nn.ParameterDict({t: nn.Parameter(torch.zeros(h)) for t in cfg.tasks})
        self.stacks = nn.ModuleDict(
            {
                t: nn.ModuleList(SegmentAttentionLayer(cfg) for _ in range(cfg.attn_layers))
                for t in cfg.tasks
            }
        )
        self.out_norm = nn.ModuleDict({t: nn.LayerNorm(h) for t in cfg.tasks})
        self.decision_emb = nn.ModuleDict(
            {t: nn.Embedding(self._max_choices(t), h) for t in cfg.tasks}
        )
        if "placement" in cfg.tasks:
            self.node_query = nn.Linear(h, h)
            if cfg.placement_actions == "device":
                self.device_key = nn.Linear(N_DEVICE_FEATURES, h)
            self.device_emb = nn.Embedding(cfg.max_devices, h)
        if cfg.layer_head > 0 and "placement" in cfg.tasks:
            f = cfg.layer_frequencies
            self.layer_head = nn.Linear(2 * f, cfg.max_devices, bias=False)
            # Lower frequencies weigh more (std halves every two octaves), so the start is
            # mostly a smooth function of the layer.
            std = cfg.layer_head * (2.0 ** (-0.5 * torch.arange(f, dtype=torch.float32)))
            with torch.no_grad():
                self.layer_head.weight.copy_(torch.randn(cfg.max_devices, 2 * f) * std.repeat(2))
        self.level_heads = nn.ModuleDict(
            {t: nn.Linear(h, cfg.max_choices) for t in cfg.tasks if t != "placement"}
        )

    def _max_choices(self, task: str) -> int:
        return self.config.max_devices if task == "placement" else self.config.max_choices

    def encode(self, inp: GraphInput) -> tuple[torch.Tensor, torch.Tensor]:
        """Node states (n, H) in node order, and the graph embedding (H,)."""
        h = self.node_in(inp.x) + self.kind_emb(inp.kind)
        for layer in self.sage:
            h = layer(h, inp)
        pooled = torch.cat([h.mean(0), h.max(0).values, inp.graph, inp.device.mean(0)], dim=0)
        return h, self.graph_mlp(pooled)

    def forward(
        self,
        inp: GraphInput,
        n_choices: dict[str, int] | None = None,
        *,
        prior: Mapping[str, torch.Tensor] | None = None,
        roles: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Logits per task, (n, a_task) each, rows in node order; placement's (R, a) with
        ``roles``.

        Conditioning: each pass after the first reads the expected embedding of the
        previous task's decision under the distribution that is sampled from, the logits
        this forward returns for that task: the head's logits, averaged per role when
        ``roles`` ties placement (each node then takes its role's row), plus that task's
        ``prior``. So a prior that moves the placement also moves what priority and fusion
        are conditioned on. Without ``prior`` and ``roles`` the logits are the heads' own.

        Args:
            inp: The graph (`prepare`).
            n_choices: Choices per task; placement defaults to the cluster's devices,
                priority to 16 levels, fusion to 2.
            prior: Fixed additive offsets per task (a task left out gets none), of the
                shape that task's returned logits have: a warm start
                (`agents.go.ppo.PPOTrainer.set_prior`).
            roles: (n,) the role of each node (`agents.go.roles`; tied roles): the placement
                logits become one row per role, the mean of its nodes' rows (`role_mean`).
        """
        cfg = self.config
        choices = {"placement": inp.n_devices, "priority": 16, "fusion": 2}
        choices.update(n_choices or {})
        for task in cfg.tasks:
            if not 1 <= choices[task] <= self._max_choices(task):
                raise ValueError(
                    f"{task} has {choices[task]} choices; this network handles at most "
                    f"{self._max_choices(task)}"
                )
        nodes, graph_emb = self.encode(inp)
        n, s = inp.n, cfg.segment
        n_seg = -(-n // s)
        seq = nodes.new_zeros(n_seg * s, cfg.hidden)
        seq[:n] = nodes[inp.order]
        valid = torch.zeros(n_seg * s, dtype=torch.bool, device=nodes.device)
        valid[:n] = True
        seq = seq.reshape(n_seg, s, cfg.hidden)
        valid = valid.reshape(n_seg, s)
        inverse = torch.empty_like(inp.order)
        inverse[inp.order] = torch.arange(n, device=inverse.device)
        out: dict[str, torch.Tensor] = {}
        for task in cfg.tasks:
            x = seq + self.task_emb[task]
            for layer in cast(nn.ModuleList, self.stacks[task]):
                x = layer(x, valid, graph_emb)
            x = self.out_norm[task](x)
            states = x.reshape(n_seg * s, cfg.hidden)[:n][inverse]  # back to node order
            logits = self._head(task, states, inp, choices[task])
            tied = roles if task == "placement" else None
            if tied is not None:
                logits = role_mean(logits, tied)
            if prior is not None and task in prior:
                logits = logits + prior[task]
            out[task] = logits
            # The next task reads this pass's states plus the expected decision embedding,
            # under the distribution sampled from (prior included; tied: each node's role).
            embedding = cast(nn.Embedding, self.decision_emb[task])
            sampled = logits if tied is None else logits[tied]
            expected = sampled.softmax(-1) @ embedding.weight[: choices[task]]
            seq = x + torch.cat(
                [expected[inp.order], expected.new_zeros(n_seg * s - n, cfg.hidden)]
            ).reshape(n_seg, s, cfg.hidden)
        return out

    def layer_encoding(self, inp: GraphInput) -> torch.Tensor:
        """(n, 2F) sines then cosines of ``pi * 2**k * layer``, k < F, per op.

        Why a head of its own: the devices are identical, so the reward does not change
        when they are relabelled, and a policy that samples every op independently gets
        no first-order signal for splitting the layers until that symmetry is broken.
        Without the head, the network breaks it by leaning every op the same way (the
        collapse onto one device); the head's random start breaks it along the layers.
        """
        frequencies = self.config.layer_frequencies
        freq = math.pi * 2.0 ** torch.arange(frequencies, dtype=torch.float32, device=inp.x.device)
        angle = inp.x[:, LAYER_COLUMN, None] * freq
        return torch.cat([angle.sin(), angle.cos()], dim=1)

    def _head(self, task: str, states: torch.Tensor, inp: GraphInput, a: int) -> torch.Tensor:
        if task == "placement":
            keys = self.device_emb(torch.arange(a, device=states.device))
            if self.config.placement_actions == "device":
                keys = keys + self.device_key(inp.device[:a])
            # else choice k is an offset of k devices, which no device's features describe
            logits = self.node_query(states) @ keys.T / math.sqrt(self.config.hidden)
            if self.config.layer_head > 0:
                logits = logits + self.layer_head(self.layer_encoding(inp))[:, :a]
            return logits
        return self.level_heads[task](states)[:, :a]


def role_mean(logits: torch.Tensor, roles: torch.Tensor) -> torch.Tensor:
    """(roles, a) the mean of each role's rows of (n, a) ``logits``."""
    count = int(roles.max()) + 1
    total = logits.new_zeros(count, logits.shape[1]).index_add(0, roles, logits)
    size = torch.bincount(roles, minlength=count).to(logits.dtype)
    return total / size[:, None]


def padded_logits(logits: torch.Tensor, max_nodes: int) -> torch.Tensor:
    """(n, a) logits padded to (max_nodes, a) with rows that always choose 0.

    A padded row's log-probability of choice 0 is exactly 0 and its entropy is 0, so padded
    nodes add nothing to a decision's log-probability or to the entropy bonus.
    """
    n, a = logits.shape
    if max_nodes < n:
        raise ValueError(f"max_nodes={max_nodes} is smaller than the {n} real nodes")
    pad = logits.new_full((max_nodes - n, a), MASKED_LOGIT)
    pad[:, 0] = 0.0
    return torch.cat([logits, pad])


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
