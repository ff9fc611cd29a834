"""The four registered tasks. Each class only declares what its action decides; the shared
behaviour lives in `GraphOptEnv`, and the shared docstring sections in `_SECTIONS`."""

from __future__ import annotations

from go_gym.envs.graph_env import GraphOptEnv

_SECTIONS = """
    ## Observation Space
    A ``Dict`` of fixed-shape arrays, encoded once per graph (see `go_gym.envs.encoding`):
    ``node_features`` (N, 15) float32, ``op_kind`` (N,) int32, ``edge_index`` (2, E) int32,
    ``edge_features`` (E, 2) float32, ``device_features`` (D, 4) float32, ``graph_features``
    (5,) float32, ``node_mask`` (N,) and ``edge_mask`` (E,) int8 (1 = real, 0 = padding).
    N and E are the graph's sizes, or the largest graph's with ``graphs=``. With
    ``episode_steps > 1`` it also holds ``previous_action`` (rows: decided tasks) and
    ``previous_result`` = [step time / lower bound, valid, max peak memory / capacity,
    fraction of the episode used].

    ## Rewards
    From the effective step time ``t``: the simulated step time, or ``oom_penalty`` times the
    lower bound when the decision does not fit in memory (default 100: a failed placement
    counts as a step 100x the bound, as HDP counts one as a 100 s step).
    ``"neg_sqrt_ratio"`` (default): ``-sqrt(t / lower_bound)``, always defined and comparable
    across graphs; ``"speedup"``: ``t_ref / t`` over the TensorFlow-like default decision (one
    device, first-ready order, no fusion; its OOM is penalised the same way);
    ``"neg_step_time"``: ``-t`` in seconds.

    ## Starting State
    ``reset`` picks the episode's graph (the only one, or one drawn from ``graphs=`` with
    ``self.np_random``, or the one given as ``options={"graph": ...}``: an id or an
    `OpGraph` that fits the padding) and returns its encoding; nothing else is random.

    ## Episode End
    Terminated after ``episode_steps`` steps (1 by default: one-shot, the GO setting), or at
    once when a decision runs out of memory; a step after the end is an error until
    ``reset``. Never truncated.

    ## Info
    ``graph``, ``n_ops``, ``lower_bound``, ``reference_step_time`` and ``reference_valid`` (the
    default decision) on reset and step; after a step also ``step_time`` (raw, seconds),
    ``effective_step_time``, ``valid``, ``peak_memory`` (per device, bytes), ``bytes_moved``.

    ## Arguments
    - ``graph``: a suite graph id (default ``"quick-v0/rnnlm-2"``) or an `OpGraph`.
    - ``cluster``: a preset name or a `Cluster`; default: the suite's cluster for graph ids
      (with ``graphs=``, ids of suites on different clusters are an error unless ``cluster=``
      or ``n_devices=`` settles it), else ``"p100"`` (4 GPUs). ``n_devices`` overrides the
      preset's device count.
    - ``graphs``: several graphs for transfer learning: a list of ids/graphs, a suite name, or
      a callable ``rng -> OpGraph`` (then ``max_nodes`` and ``max_edges`` are required, and
      the env keeps the contexts of only the last few graphs it drew). Observations and
      actions are padded to the largest graph; padded decisions are ignored.
    - ``reward``, ``oom_penalty``: see Rewards.
    - ``priority_levels`` (16), ``fusion_levels`` (2): sizes of those decision spaces.
    - ``episode_steps``: 1 for one-shot decisions, K > 1 for iterative refinement.
    - ``placement``, ``priority``, ``fusion``: the decisions this env does not take, fixed:
      ``placement`` an array or a placer name (default ``"single-device"``), ``priority`` an
      array (default: first-ready order), ``fusion`` an array (default: no fusion). Arrays
      are checked like actions (against every graph of ``graphs=``), and colocated ops
      follow their group's first member as in an action (``fixed_decisions`` shows the
      result).
    - ``profile``: simulator profile, ``"go"`` (default) or ``"placeto"``. The Placeto profile
      has no priorities: an env that decides priority (``GOScheduling-v0``, ``GOJoint-v0``)
      or is given a fixed ``priority`` refuses it with a ValueError.
    - ``render_mode``: ``"rgb_array"`` (a Gantt chart of the last step) or ``"ansi"``.

    ## Version History
    - v0: initial release. Before that release (go_gym 0.1.0 is unreleased), on 2026-12-08
      the fusion and joint dynamics changed: a fused group reads a tensor from outside it
      once, a group of measured-time ops is never faster than a member, and a parameter's
      outputs take no memory beyond its persistent bytes; the committed quick-v0-joint rows
      were run again with them.
"""


class PlacementEnv(GraphOptEnv):
    """Device placement: put every op of a training graph on a device.

    ## Description
    The action assigns each op to one of the cluster's devices; the simulator runs one
    training step under that placement (with the fixed schedule and fusion) and the reward
    says how fast it was. Ops of one colocation group take the decision of their first member.
    This is the task of ColocRL, HDP, Placeto and the GO paper's placement results.

    ## Action Space
    ``MultiDiscrete([n_devices] * N)``: the device of every op.
    {sections}
    ## Example
    >>> import gymnasium as gym
    >>> import go_gym
    >>> env = gym.make("GOPlacement-v0", graph="quick-v0/rnnlm-2")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> terminated
    True
    """

    decides = ("placement",)


class SchedulingEnv(GraphOptEnv):
    """Op scheduling: give every op a priority that orders it among the ready ops.

    ## Description
    When a device is free it starts the ready op with the highest priority (ties: the lower
    topological index). The placement is fixed (``placement=``, default one device). On one
    device ops run one at a time, so every order takes the same time and only peak memory
    differs: for the scheduling problem proper fix a placement over several devices, e.g.
    ``placement="human-expert"``, the setup `go-gym bench --task scheduling` measures.

    ## Action Space
    ``MultiDiscrete([priority_levels] * N)``: the priority of every op (higher runs first).
    {sections}
    ## Example
    >>> import gymnasium as gym
    >>> import go_gym
    >>> env = gym.make("GOScheduling-v0", placement="human-expert", priority_levels=8)
    >>> obs, info = env.reset(seed=0)
    >>> _ = env.step(env.action_space.sample())
    """

    decides = ("priority",)


class FusionEnv(GraphOptEnv):
    """Op fusion: decide which ops are fused with their producers into one kernel.

    ## Description
    Each op gets a fusion priority (0 = do not fuse); `go_gym.sim.fuse` turns the decisions
    into legal groups (never across devices, never a cycle, kind rules) greedily in priority
    order, and a fused group runs as one kernel that moves only its boundary bytes.

    ## Action Space
    ``MultiDiscrete([fusion_levels] * N)``: the fusion priority of every op.
    {sections}
    ## Example
    >>> import gymnasium as gym
    >>> import go_gym
    >>> env = gym.make("GOFusion-v0")
    >>> obs, info = env.reset(seed=0)
    >>> _ = env.step(env.action_space.sample())
    """

    decides = ("fusion",)


class JointEnv(GraphOptEnv):
    """Placement, scheduling and fusion decided together, as GO's stacked task heads do.

    ## Description
    One action carries all three decisions for every op; they are applied together (fusion
    within devices, then placement and priorities of the fused groups).

    ## Action Space
    ``Dict(fusion=MultiDiscrete([fusion_levels] * N), placement=MultiDiscrete([n_devices] *
    N), priority=MultiDiscrete([priority_levels] * N))``: Gymnasium sorts a ``Dict``'s keys,
    so they come in that order (fusion, placement, priority) in samples and flattening.
    {sections}
    ## Example
    >>> import gymnasium as gym
    >>> import go_gym
    >>> env = gym.make("GOJoint-v0")
    >>> obs, info = env.reset(seed=0)
    >>> _ = env.step(env.action_space.sample())
    """

    decides = ("placement", "priority", "fusion")


for _cls in (PlacementEnv, SchedulingEnv, FusionEnv, JointEnv):
    _cls.__doc__ = (_cls.__doc__ or "").replace("{sections}", _SECTIONS)
