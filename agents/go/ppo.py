"""PPO for one-shot episodes: one forward per graph, K decisions sampled from it, K scores.

An episode of a go_gym env is one step: the policy decides every node of the graph at once
and the simulator scores the whole decision. One PPO iteration on a graph therefore is:

1. one forward pass without gradient, giving (n, a) logits per task;
2. K decisions drawn from those logits (``torch.multinomial`` with a seeded generator), plus
   the greedy (argmax) decision, all scored in one batch by ``env.unwrapped.evaluate``
   (`go_gym.sim.simulate_many` on all cores; K + 1 evaluations, counted exactly; near
   the end of a budget, the greedy row gives way to samples while two or more evaluations
   are left, so every step but a last one-evaluation step makes an update);
3. rewards from the env's convention (default ``-sqrt(step_time / lower_bound)``, an
   out-of-memory decision counting as ``oom_penalty x lower_bound``); the baseline is the
   mean reward of the K samples (they share the same logits, so the batch mean is an
   unbiased, per-graph baseline; no value network is needed), and advantages are
   normalised by the batch standard deviation;
4. ``epochs`` passes of the clipped PPO objective on the K samples, recomputing the logits
   with gradient each epoch, with an entropy bonus, Adam and gradient-norm clipping; the
   passes stop early once the policy has moved ``target_kl`` (mean per-node KL divergence)
   from the one that sampled them.

The log-probability of a decision is the sum over nodes (and tasks) of per-node
log-probabilities. Clipping that sum's ratio would clip almost everything on graphs of
thousands of nodes (a tiny per-node change multiplies up), so the ratio is clipped per
node, with the decision's advantage on every node, and the surrogate is averaged over
nodes ("token-level" PPO). At the first epoch this is exactly the policy gradient of the
summed log-probability, divided by n; the division keeps the step size independent of the
graph size. The greedy row is used for tracking the best decision only, not for the update.

Everything random comes from the seed: torch's generator for sampling, torch's global seed
for initial weights (set by the caller).

Devices: the trainer puts the policy and each graph's tensors on its ``device`` (the CPU by
default; a GPU with ``device="cuda"``). Sampling always draws from a CPU generator, on the
probabilities copied to the CPU, so the seed means the same draws on every device and the
generator's state in a checkpoint resumes anywhere; decisions go to the simulator as NumPy.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from agents.base import setting_digest
from agents.go.model import GOConfig, GOPolicy, GraphInput, prepare
from agents.go.roles import role_groups
from agents.go.tree import PlacementTree
from go_gym.envs.graph_env import REWARDS, GraphOptEnv


@dataclass(frozen=True)
class PPOConfig:
    """PPO settings (saved with checkpoints; plain types only).

    The defaults (16 epochs, clip 0.3, KL target 0.01) come from a sweep on quick-v0 and a
    held-out check on go-paper-v0 (``agents/go/EXPERIMENTS.md``): more passes per batch learn
    faster, and the KL target stops them before the policy collapses onto its first good
    decision. 16 epochs at clip 0.3 without it: 1.225x the human expert's speed on quick-v0
    but 0.59x on go-paper-v0 (transformer-xl-2 327 ms instead of 149 ms); with it 1.204x and
    0.82x, where the former defaults (4 epochs, clip 0.2, no target) gave 1.098x and 0.65x.
    16 samples per iteration rather than 32: twice the iterations for the same evaluations,
    and the policy has a long way to travel from uniform; from scratch on quick-v0 (seeds 0
    and 1) it gave 0.96x the step time of 32 samples (better on 5 of 6 graphs), where 64 and
    128 samples were worse (rnnlm-2: 2.13 and 2.23 ms against 2.04 ms).

    Attributes:
        samples: K, decisions sampled per iteration from one forward.
        epochs: Clipped-objective passes over the K samples per iteration.
        clip: PPO clip range of the per-node probability ratio.
        lr: Adam learning rate.
        entropy_coef: Weight of the mean per-node entropy bonus.
        max_grad_norm: Gradient-norm clip.
        greedy_row: Also score the argmax decision each iteration (one more evaluation).
        target_kl: Stop an iteration's epochs early once the mean per-node KL divergence
            from the sampling policy exceeds this (None: always run every epoch).
        deciding_nodes_only: Count in the objective, the entropy and the KL only the nodes
            whose choice the env uses (placement: one per colocation group).
        min_deviations: Hold the expected number of deciding nodes per sample that leave
            the policy's most likely choice at or above this, by doubling the entropy bonus
            (to at least 0.01, at most 1) for each iteration below it, and halving it back
            towards ``entropy_coef`` above.
    """

    samples: int = 16
    epochs: int = 16
    clip: float = 0.3
    lr: float = 1e-3
    entropy_coef: float = 0.01
    max_grad_norm: float = 1.0
    greedy_row: bool = True
    target_kl: float | None = 0.01
    deciding_nodes_only: bool = False
    min_deviations: float | None = None

    def __post_init__(self) -> None:
        """Refuse settings that would break training (a negative ``max_grad_norm`` flips
        the gradient, a NaN coefficient makes every weight NaN...), naming the field."""
        _integer("PPOConfig", "samples", self.samples, 2, "(a batch-mean baseline)")
        _integer("PPOConfig", "epochs", self.epochs, 1)
        _real("PPOConfig", "clip", self.clip, "in (0, 1)", lambda v: 0 < v < 1)
        _real("PPOConfig", "lr", self.lr, "> 0", lambda v: v > 0)
        _real("PPOConfig", "entropy_coef", self.entropy_coef, ">= 0", lambda v: v >= 0)
        _real("PPOConfig", "max_grad_norm", self.max_grad_norm, "> 0", lambda v: v > 0)
        _flag("PPOConfig", "greedy_row", self.greedy_row)
        if self.target_kl is not None:
            _real("PPOConfig", "target_kl", self.target_kl, "> 0 or None", lambda v: v > 0)
        _flag("PPOConfig", "deciding_nodes_only", self.deciding_nodes_only)
        if self.min_deviations is not None:
            _real(
                "PPOConfig", "min_deviations", self.min_deviations, ">= 0 or None", lambda v: v >= 0
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain types (for checkpoints)."""
        return asdict(self)


def _integer(owner: str, name: str, value: Any, least: int, why: str = "") -> None:
    """Refuse ``value`` unless it is an integer (not a bool) >= ``least``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise ValueError(
            f"{owner}.{name} must be an integer >= {least}{' ' + why if why else ''}, got {value!r}"
        )


def _real(owner: str, name: str, value: Any, rule: str, ok: Callable[[float], bool]) -> None:
    """Refuse ``value`` unless it is a finite real number (not a bool) for which ``ok``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not ok(float(value))
    ):
        raise ValueError(f"{owner}.{name} must be a finite number {rule}, got {value!r}")


def _flag(owner: str, name: str, value: Any) -> None:
    """Refuse ``value`` unless it is a bool (``"no"`` would be true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}.{name} must be True or False, got {value!r}")


@dataclass
class GraphRecord:
    """What the trainer keeps per graph in its setting (`graph_key`: the cluster, the decided
    tasks and the fixed decisions too): its input and the best decision found on it."""

    name: str
    input: GraphInput
    choices: dict[str, int]
    tasks: tuple[str, ...]
    best_time: float = math.inf
    best: dict[str, NDArray[np.int64]] = field(default_factory=dict)
    evaluations: int = 0
    prior: dict[str, torch.Tensor] = field(default_factory=dict)  # fixed logit offsets
    # Columns of `PPOTrainer.log_probs` whose node choices the env uses (None: all).
    deciding: torch.Tensor | None = None
    entropy_coef: float | None = None  # the adapted bonus (min_deviations)
    tree: PlacementTree | None = None  # with tree actions: placement offsets -> devices
    # With tied roles: (n,) the role (`agents.go.roles`) whose placement choice each node
    # takes; the placement logits, actions and prior are then one row per role.
    roles: torch.Tensor | None = None


@dataclass(frozen=True)
class IterationStats:
    """One iteration on one graph, as logged to CSV."""

    iteration: int
    graph: str
    evaluations: int  # total so far, all graphs
    graph_evaluations: int  # so far on this graph
    mean_reward: float
    mean_step_time: float
    greedy_step_time: float
    best_step_time: float
    entropy: float
    loss: float
    seconds: float


def graph_key(core: GraphOptEnv) -> str:
    """Identity of the env's current graph in its setting, the key of the trainer's records:
    ``<graph checksum>:<devices>:<setting digest>``, the digest
    (`agents.base.setting_digest`) covering the cluster's figures, the decided tasks, the
    fixed decisions, the simulator profile and the OOM penalty. The same graph on a K80
    and on a P100 pair, or with the placement decided and with it fixed, is two records."""
    return f"{core.graph.checksum()}:{core.cluster.n_devices}:{setting_digest(core)}"


def legacy_graph_key(core: GraphOptEnv) -> str:
    """`graph_key` as checkpoints written before the setting digest have it:
    ``<graph checksum>:<devices>`` (graph and device count only)."""
    return f"{core.graph.checksum()}:{core.cluster.n_devices}"


def is_legacy_key(key: str) -> bool:
    """Whether ``key`` is in `legacy_graph_key`'s format (one ``:``, no setting digest)."""
    return key.count(":") == 1


def policy_mismatch(config: GOConfig, core: GraphOptEnv) -> str | None:
    """Why a policy of ``config`` cannot decide ``core``'s current graph, or None if it can:
    a task the env decides with no pass in the network, or more choices than its heads have
    (what `PPOTrainer.record` and `GOPolicy.forward` would otherwise refuse at the first
    iteration, after a command had started writing its output)."""
    missing = [t for t in core.decides if t not in config.tasks]
    if missing:
        return (
            f"the policy has no pass for {missing}; {type(core).__name__} decides "
            f"{list(core.decides)} and the policy {list(config.tasks)}"
        )
    for task in config.tasks:
        if task == "placement":
            choices, limit, field_name = (
                config.placement_choices(core.cluster.n_devices),
                config.max_devices,
                "max_devices",
            )
        else:
            choices, limit, field_name = core.n_choices(task), config.max_choices, "max_choices"
        if choices > limit:
            return (
                f"{task} has {choices} choices per op on graph {core.graph.name!r}; the "
                f"policy has {limit} (GOConfig.{field_name})"
            )
    return None


def torch_device(spec: torch.device | str) -> torch.device:
    """The torch device named by ``spec`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``...;
    ``"auto"``: the first GPU if torch sees one, else the CPU), checked to exist here, so a
    missing GPU is a clear error before any work rather than a failure deep in a forward."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"not a torch device: {spec!r} ({exc})") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"device {spec!r}: torch sees no CUDA GPU (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda}); use device='cpu'"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {spec!r}: torch sees {count} CUDA GPU(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {spec!r}: the MPS backend is not available here")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {spec!r}: the GO trainer runs on cpu, cuda or mps")
    return device


#: The entries of a `PPOTrainer.state_dict` that resuming needs besides the model (a
#: policy file, `agents.go.checkpoint.POLICY_KEYS`, lacks the first two).
RESUME_KEYS: tuple[str, ...] = ("optimizer", "generator", "iteration", "evaluations")


class PPOTrainer:
    """Owns a policy, its optimiser and the best decisions found; trains graph by graph.

    Args:
        policy: The network (moved to ``device``).
        config: PPO settings.
        seed: Seeds the sampling generator.
        device: Where the network runs (`torch_device`); CPU by default, so that results
            are the same on every machine (a GPU's float arithmetic differs in the last bits,
            and a trajectory of sampled decisions amplifies that).
    """

    def __init__(
        self,
        policy: GOPolicy,
        config: PPOConfig | None = None,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch_device(device)
        self.policy = policy.to(self.device)
        self.config = config or PPOConfig()
        self.seed = seed
        self.optimizer = torch.optim.Adam(policy.parameters(), lr=self.config.lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.iteration = 0
        self.evaluations = 0
        self.records: dict[str, GraphRecord] = {}

    # --- graphs ------------------------------------------------------------------------------
    def record(self, core: GraphOptEnv) -> GraphRecord:
        """The record of ``core``'s current graph in its setting (`graph_key`; its input built
        on first sight)."""
        key = graph_key(core)
        if key not in self.records:
            missing = [t for t in core.decides if t not in self.policy.config.tasks]
            if missing:
                raise ValueError(
                    f"the policy has no pass for {missing}; {type(core).__name__} decides "
                    f"{list(core.decides)} (make it with GOConfig(tasks=...))"
                )
            obs = {k: v for k, v in core._context.encoded.observation.items()}
            deciding = None
            if self.config.deciding_nodes_only:
                n = core.graph.n_ops
                leader = core._context.leader
                columns = [
                    np.flatnonzero(leader == np.arange(n)) if t == "placement" else np.arange(n)
                    for t in core.decides
                ]
                deciding = torch.as_tensor(
                    np.concatenate([c + i * n for i, c in enumerate(columns)]),
                    dtype=torch.long,
                    device=self.device,
                )
            tree = roles = None
            config = self.policy.config
            choices = {t: core.n_choices(t) for t in config.tasks}
            if config.tree_actions and "placement" in core.decides:
                n_devices = core.n_choices("placement")
                choices["placement"] = config.placement_choices(n_devices)
                if choices["placement"] > config.max_devices:
                    raise ValueError(
                        f"{config.placement_actions} actions on {n_devices} devices are "
                        f"{choices['placement']} choices per op; this network has "
                        f"{config.max_devices} (GOConfig.max_devices)"
                    )
                tree = PlacementTree.build(core.graph, core._context.leader, n_devices)
                if config.tie_roles:
                    if deciding is not None:
                        raise ValueError(
                            "deciding_nodes_only counts nodes; tied roles decide roles"
                        )
                    roles = torch.as_tensor(
                        role_groups(core.graph, core._context.leader), device=self.device
                    )
            self.records[key] = GraphRecord(
                name=core.graph.name,
                input=prepare(obs, core.graph.topo_order, self.device),
                choices=choices,
                tasks=tuple(core.decides),
                deciding=deciding,
                tree=tree,
                roles=roles,
            )
        return self.records[key]

    @staticmethod
    def decisions(
        rec: GraphRecord, actions: dict[str, NDArray[np.int64]]
    ) -> dict[str, NDArray[np.int64]]:
        """The env's decisions ((R, n) per task) for the policy's actions: the actions
        themselves, except placement with tree actions: each role's choice given to its
        nodes (tied roles), then offsets decoded along the tree."""
        if rec.tree is None or "placement" not in actions:
            return actions
        offsets = actions["placement"]
        if rec.roles is not None:
            offsets = offsets[:, rec.roles.cpu().numpy()]
        return {**actions, "placement": rec.tree.decode(offsets)}

    def logits(self, rec: GraphRecord) -> dict[str, torch.Tensor]:
        """The policy's logits for the tasks the graph's env decides: (n, a) per task, or
        (roles, a) for placement with tied roles, each role's the mean of its nodes'; plus
        the graph's prior, if `set_prior` gave it one. Both are applied inside the forward
        (`GOPolicy.forward`), so a later task is conditioned on the placement distribution
        that is sampled, not on the network's raw one."""
        out = self.policy(rec.input, rec.choices, prior=rec.prior or None, roles=rec.roles)
        return {t: out[t] for t in rec.tasks}

    # --- sampling ----------------------------------------------------------------------------
    def sample(self, logits: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        """K decisions per task, (K, n) each on the CPU, all from the same logits (one-shot)."""
        out = {}
        for task, lg in logits.items():
            probs = lg.detach().float().softmax(-1).cpu()
            out[task] = torch.multinomial(probs, k, replacement=True, generator=self.generator).T
        return out

    @staticmethod
    def log_probs(
        logits: dict[str, torch.Tensor], actions: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Per-node log-probabilities (K, n_tasks * n) of the sampled decisions (``sample``'s
        CPU tensors; they are moved to the logits' device)."""
        parts = []
        for task, lg in logits.items():
            logp = lg.log_softmax(-1)  # (n, a)
            nodes = torch.arange(lg.shape[0], device=lg.device)[None, :]
            parts.append(logp[nodes, actions[task].to(lg.device)])
        return torch.cat(parts, dim=1)

    @staticmethod
    def entropy(
        logits: dict[str, torch.Tensor], columns: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean per-node entropy over tasks (over ``columns`` of the concatenation only)."""
        ents = []
        for lg in logits.values():
            logp = lg.log_softmax(-1)
            ents.append(-(logp.exp() * logp).sum(-1))
        ent = torch.cat(ents)
        return (ent if columns is None else ent[columns]).mean()

    def greedy(self, core: GraphOptEnv) -> dict[str, NDArray[np.int64]]:
        """The policy's argmax decision for ``core``'s current graph (no evaluation)."""
        rec = self.record(core)
        with torch.no_grad():
            logits = self.logits(rec)
        rows = {
            t: lg.argmax(-1).cpu().numpy().astype(np.int64)[None, :] for t, lg in logits.items()
        }
        return {t: r[0] for t, r in self.decisions(rec, rows).items()}

    def score(self, core: GraphOptEnv, rows: dict[str, NDArray[np.int64]]) -> NDArray[np.float64]:
        """Effective step times of decision ``rows`` ((R, n) per task) on ``core``'s graph,
        charged to the trainer's and the graph's evaluations; the best row is kept."""
        rec = self.record(core)
        before = core.evaluations
        times = core.evaluate(rows)
        spent = core.evaluations - before
        self.evaluations += spent
        rec.evaluations += spent
        i = int(np.argmin(times))
        if times[i] < rec.best_time:
            rec.best_time = float(times[i])
            rec.best = {t: r[i].copy() for t, r in rows.items()}
        return times

    # --- one iteration -------------------------------------------------------------------------
    def step(self, core: GraphOptEnv, budget_left: int | None = None) -> IterationStats | None:
        """One PPO iteration on ``core``'s current graph; None if the budget allows none.

        Spends K + 1 evaluations (K with ``greedy_row=False``), fewer if ``budget_left``
        is smaller. When the greedy row would leave fewer than two samples but two or more
        evaluations are left, the greedy row is dropped and all that is left is sampled, so
        that an update is still made (a greedy-only step would score a decision that the
        next step, the policy unchanged, scores again). With one evaluation left it goes to
        the greedy decision, and no update is made.
        """
        cfg = self.config
        rec = self.record(core)
        t0 = time.perf_counter()
        extra = 1 if cfg.greedy_row else 0
        k = cfg.samples
        if budget_left is not None:
            if budget_left <= 0:
                return None
            k = min(k, budget_left - extra)
            if extra and k < 2 <= budget_left:  # samples (an update) rather than the greedy row
                extra, k = 0, min(cfg.samples, budget_left)
        self.policy.train()
        with torch.no_grad():
            logits = self.logits(rec)
        if k < 2:  # nothing to learn from: spend what is left on the greedy decision
            k = 0
        actions = self.sample(logits, k) if k else {}
        rows: dict[str, NDArray[np.int64]] = {}
        for task, lg in logits.items():
            parts = []
            if extra or not k:
                parts.append(lg.argmax(-1)[None, :].cpu())
            if k:
                parts.append(actions[task])
            rows[task] = torch.cat(parts).numpy().astype(np.int64)
        times = self.score(core, self.decisions(rec, rows))
        reward_fn = REWARDS[core.reward_name]
        reference = float(core._context.reference.step_time)
        rewards = np.array([reward_fn(float(t), core.lower_bound, reference) for t in times])
        greedy_time = float(times[0]) if (extra or not k) else float("nan")
        sample_rewards = rewards[len(times) - k :]
        loss_value = entropy_value = float("nan")
        if k >= 2:
            loss_value, entropy_value = self._update(rec, logits, actions, sample_rewards)
        self.iteration += 1
        sample_times = times[len(times) - k :] if k else times
        return IterationStats(
            iteration=self.iteration,
            graph=rec.name,
            evaluations=self.evaluations,
            graph_evaluations=rec.evaluations,
            mean_reward=float(sample_rewards.mean()) if k else float(rewards.mean()),
            mean_step_time=float(np.mean(sample_times)),
            greedy_step_time=greedy_time,
            best_step_time=rec.best_time,
            entropy=entropy_value,
            loss=loss_value,
            seconds=time.perf_counter() - t0,
        )

    def _update(
        self,
        rec: GraphRecord,
        logits: dict[str, torch.Tensor],
        actions: dict[str, torch.Tensor],
        sample_rewards: NDArray[np.float64],
    ) -> tuple[float, float]:
        """The clipped-objective epochs on the K samples drawn from ``logits`` (advantages
        normalised over the batch, the entropy bonus adapted by ``min_deviations``); the loss
        and entropy of the last epoch run."""
        cfg = self.config
        loss_value = entropy_value = float("nan")
        std = sample_rewards.std()
        adv = (sample_rewards - sample_rewards.mean()) / (std if std > 1e-12 else 1.0)
        advantage = torch.as_tensor(adv, dtype=torch.float32, device=self.device)[:, None]
        cols = rec.deciding
        coef = cfg.entropy_coef if rec.entropy_coef is None else rec.entropy_coef
        if cfg.min_deviations is not None:
            with torch.no_grad():
                off = torch.cat([1 - lg.softmax(-1).max(-1).values for lg in logits.values()])
                deviations = float((off if cols is None else off[cols]).sum())
            if deviations < cfg.min_deviations:
                coef = min(max(coef * 2, 0.01), 1.0)
            else:
                coef = max(coef / 2, cfg.entropy_coef)
            rec.entropy_coef = coef
        with torch.no_grad():
            old = self.log_probs(logits, actions)
            if cols is not None:
                old = old[:, cols]
        for epoch in range(cfg.epochs):
            new_logits = self.logits(rec)
            new = self.log_probs(new_logits, actions)
            log_ratio = (new if cols is None else new[:, cols]) - old
            if cfg.target_kl is not None and epoch > 0:
                with torch.no_grad():  # the k3 estimator, per node, of KL(old || new)
                    kl = float((log_ratio.exp() - 1 - log_ratio).mean())
                if kl > cfg.target_kl:
                    break
            ratio = log_ratio.exp()
            surrogate = torch.minimum(
                ratio * advantage, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * advantage
            )
            entropy = self.entropy(new_logits, cols)
            loss = -surrogate.mean() - coef * entropy
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
            self.optimizer.step()
            loss_value, entropy_value = float(loss.detach()), float(entropy.detach())
        return loss_value, entropy_value

    # --- warm start --------------------------------------------------------------------------
    def set_prior(
        self,
        core: GraphOptEnv,
        decisions: dict[str, NDArray[np.int64]],
        deviate: float | Mapping[str, float | NDArray[np.float64]],
    ) -> None:
        """Start from a given decision: a fixed offset on the graph's logits (no evaluation).

        An optional warm start (not in the GO paper): a residual policy (Silver et al. 2018,
        "Residual Policy Learning"). The offset ``log((1 - deviate) (a - 1) / deviate)`` on
        each node's chosen value makes a policy whose own logits are equal over the ``a``
        choices keep that value with probability ``1 - deviate`` and spread ``deviate`` over
        the others, so K samples explore around the decision while PPO learns, in the
        network, where to leave it. The network's initial logits are small, so the start is
        close to that. Unlike imitating the decision (cross-entropy steps on the network),
        this reproduces it exactly whatever the network can fit: 100 imitation steps left
        the argmax of quick-v0/gnmt-3 at 6.30 ms against the heuristic's 4.94 ms.
        ``deviate`` is one probability for every node of every task, or a task's own (a
        number, or one per node to explore more at some nodes than at others; a task left
        out gets no offset). Tasks with a single choice get no offset. With tied roles a
        role keeps its first node's value and deviates with its nodes' mean probability, so
        as many ops leave the start per sample as without ties, in fewer, larger moves.
        With ``"tree-solo"`` actions the deviations spread over the solo moves too (2D - 2
        other choices), so a sample proposes half as many subtree moves as with ``"tree"``.
        """
        per_task = deviate if isinstance(deviate, Mapping) else dict.fromkeys(decisions, deviate)
        rec = self.record(core)
        rec.prior = {}
        for task, chosen in decisions.items():
            a = rec.choices[task]
            if a < 2 or task not in per_task:
                continue
            chosen = np.asarray(chosen, np.int64)
            p = np.asarray(per_task[task], np.float64)
            if p.ndim > 1 or (p.ndim == 1 and p.shape != chosen.shape):
                raise ValueError(
                    f"deviate of {task} must be a number or {chosen.shape}, got {p.shape}"
                )
            if not ((p > 0) & (p < 1)).all():
                raise ValueError(
                    f"deviate of {task} must be in (0, 1), got values in [{p.min()}, {p.max()}]"
                )
            if task == "placement" and rec.tree is not None:
                chosen = rec.tree.encode(chosen[None, :])[0]
                if rec.roles is not None:
                    roles = rec.roles.cpu().numpy()
                    chosen = chosen[np.unique(roles, return_index=True)[1]]  # first nodes
                    if p.ndim == 1:
                        p = np.bincount(roles, weights=p) / np.bincount(roles)
            index = torch.as_tensor(chosen, dtype=torch.int64, device=self.device)
            offset = torch.zeros(index.shape[0], a, device=self.device)
            rows = torch.arange(index.shape[0], device=self.device)
            if p.ndim == 0:
                offset[rows, index] = math.log((1 - float(p)) * (a - 1) / float(p))
            else:
                keep = np.log((1 - p) * (a - 1) / p)
                offset[rows, index] = torch.as_tensor(keep, dtype=torch.float32, device=self.device)
            rec.prior[task] = offset

    # --- loops ---------------------------------------------------------------------------------
    def train(
        self,
        envs: Sequence[GraphOptEnv],
        budget: int,
        *,
        callback: Callable[[IterationStats], bool | None] | None = None,
    ) -> list[IterationStats]:
        """Round-robin PPO over ``envs`` until ``budget`` more evaluations are spent.

        The budget is shared by all graphs (each iteration is charged to the graph it ran
        on). The turn goes on from the trainer's iteration count, so a run resumed from a
        checkpoint continues with the graph the uninterrupted run would have trained next.
        ``callback(stats)`` runs after every iteration; returning True stops early.
        """
        if not envs:
            raise ValueError("train needs at least one env")
        history: list[IterationStats] = []
        stop_at = self.evaluations + budget
        j = self.iteration
        while self.evaluations < stop_at:
            stats = self.step(envs[j % len(envs)], stop_at - self.evaluations)
            j += 1
            if stats is None:
                break
            history.append(stats)
            if callback is not None and callback(stats):
                break
        return history

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (tensors and plain types only)."""
        return {
            "model_config": self.policy.config.to_dict(),
            "ppo_config": self.config.to_dict(),
            "model": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "iteration": self.iteration,
            "evaluations": self.evaluations,
            "seed": self.seed,
            "best": {
                key: {
                    "name": rec.name,
                    "time": rec.best_time,
                    "evaluations": rec.evaluations,
                    "decisions": {t: torch.from_numpy(v) for t, v in rec.best.items()},
                }
                for key, rec in self.records.items()
                if rec.best
            },
        }

    def load_state_dict(self, state: dict[str, Any], *, optimizer: bool = True) -> None:
        """Restore `state_dict` (the model always; optimiser, RNG and counters if asked)."""
        self.policy.load_state_dict(state["model"])
        if not optimizer:
            return
        missing = [k for k in RESUME_KEYS if k not in state]
        if missing:
            raise ValueError(
                f"the state has no {missing}: it holds a policy alone (a policy.pt), which "
                "can start a run (fine-tuning) but not resume one"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.iteration = int(state["iteration"])
        self.evaluations = int(state["evaluations"])
        self._restored_best = state.get("best", {})

    def restored_best(self, core: GraphOptEnv) -> None:
        """Carry a resumed run's best decision for ``core``'s graph into its record (a
        checkpoint written before the setting digest keys it by `legacy_graph_key`)."""
        best = getattr(self, "_restored_best", {})
        saved = best.get(graph_key(core)) or best.get(legacy_graph_key(core))
        if saved:
            rec = self.record(core)
            if saved["time"] < rec.best_time:
                rec.best_time = float(saved["time"])
                rec.best = {t: v.numpy().astype(np.int64) for t, v in saved["decisions"].items()}
                rec.evaluations = int(saved["evaluations"])


def make_policy(config: Any = None, *, seed: int = 0) -> GOPolicy:
    """A freshly initialised policy, seeded (initial weights come from torch's global RNG)."""
    torch.manual_seed(seed)
    return GOPolicy(config if config is not None else GOConfig())
