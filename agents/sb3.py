"""stable-baselines3 on go_gym: a batched per-node distribution and a small graph policy.

SB3's stock ``MultiCategoricalDistribution`` builds one ``torch.distributions.Categorical``
per action dimension, i.e. one per node: at thousands of nodes that Python loop dominates
every rollout and update (`benchmarks/sb3_distribution.py` measures it). A go_gym action is N
decisions over the same a choices, so `NodeCategorical` keeps the logits as one (B, N, a)
tensor and does everything with a single ``Categorical``, whose batch shape is (B, N).

`GraphPolicy` is the smallest policy that respects graph structure: op-kind embeddings and
node features, a few GraphSAGE-style layers that average over predecessors and successors
(with the edge mask), per-node logits from a shared head (so the same weights serve any
graph size), and a value from the masked mean of node embeddings. Padded nodes get a
one-hot logit row, so they always take choice 0 and add nothing to log-probabilities or
entropy.

    >>> import gymnasium as gym
    >>> import go_gym
    >>> from stable_baselines3 import PPO
    >>> from agents.sb3 import GraphPolicy
    >>> env = gym.make("GOPlacement-v0", graph="quick-v0/rnnlm-2")
    >>> model = PPO(GraphPolicy, env, n_steps=32, batch_size=32, n_epochs=1, verbose=0)
    >>> _ = model.learn(total_timesteps=32)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from go_gym.opkinds import N_OP_KINDS

_MASKED = -1e9  # logit of the choices a padded node can never take


class NodeCategorical(Distribution):
    """N independent categoricals over the same ``n_choices``, held as one (B, N, a) tensor."""

    distribution: th.distributions.Categorical

    def __init__(self, n_nodes: int, n_choices: int) -> None:
        super().__init__()
        self.n_nodes = n_nodes
        self.n_choices = n_choices

    def proba_distribution_net(self, latent_dim: int) -> nn.Module:
        """A linear map from a flat latent to all logits (used only without `GraphPolicy`)."""
        return nn.Linear(latent_dim, self.n_nodes * self.n_choices)

    def proba_distribution(self, action_logits: th.Tensor) -> NodeCategorical:
        logits = action_logits.reshape(-1, self.n_nodes, self.n_choices)
        self.distribution = th.distributions.Categorical(logits=logits)
        return self

    def log_prob(self, actions: th.Tensor) -> th.Tensor:
        return self.distribution.log_prob(actions.long()).sum(dim=-1)

    def entropy(self) -> th.Tensor:
        return self.distribution.entropy().sum(dim=-1)

    def sample(self) -> th.Tensor:
        return self.distribution.sample()

    def mode(self) -> th.Tensor:
        return th.argmax(self.distribution.logits, dim=-1)

    def actions_from_params(
        self, action_logits: th.Tensor, deterministic: bool = False
    ) -> th.Tensor:
        self.proba_distribution(action_logits)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(self, action_logits: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        actions = self.actions_from_params(action_logits)
        return actions, self.log_prob(actions)


class GraphEncoder(BaseFeaturesExtractor):
    """Node embeddings by mean aggregation over predecessors and successors (GraphSAGE).

    Output, flattened for SB3: ``[node embeddings (N*h), node mask (N), graph embedding (h)]``;
    `GraphPolicy` splits it again.
    """

    def __init__(self, observation_space: spaces.Dict, hidden: int = 64, layers: int = 2) -> None:
        node_space = observation_space["node_features"]
        if not isinstance(node_space, spaces.Box) or len(node_space.shape) != 2:
            raise ValueError(
                f"GraphEncoder needs a go_gym observation (node_features of shape (N, F)), "
                f"got {observation_space}"
            )
        n_nodes, n_features = node_space.shape
        super().__init__(observation_space, features_dim=n_nodes * hidden + n_nodes + hidden)
        self.n_nodes, self.hidden = n_nodes, hidden
        self.kind_embedding = nn.Embedding(N_OP_KINDS, hidden)
        self.input = nn.Linear(n_features, hidden)
        self.layers = nn.ModuleList(nn.Linear(3 * hidden, hidden) for _ in range(layers))

    def forward(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        x = obs["node_features"]
        batch, n, _ = x.shape
        node_mask = obs["node_mask"].reshape(batch, n).float()
        h = th.relu(self.input(x) + self.kind_embedding(obs["op_kind"].reshape(batch, n).long()))
        h = h * node_mask.unsqueeze(-1)
        # Flatten the batch into one big graph: node (b, i) becomes b * n + i.
        edges = obs["edge_index"].reshape(batch, 2, -1).long()
        offset = (th.arange(batch, device=x.device) * n).unsqueeze(-1)
        keep = obs["edge_mask"].reshape(batch, -1).bool().flatten()
        src = (edges[:, 0] + offset).flatten()[keep]
        dst = (edges[:, 1] + offset).flatten()[keep]
        ones = th.ones_like(src, dtype=h.dtype)
        in_deg = th.zeros(batch * n, device=x.device).index_add_(0, dst, ones).clamp(min=1)
        out_deg = th.zeros(batch * n, device=x.device).index_add_(0, src, ones).clamp(min=1)
        for layer in self.layers:
            flat = h.reshape(batch * n, self.hidden)
            from_preds = th.zeros_like(flat).index_add_(0, dst, flat[src]) / in_deg.unsqueeze(-1)
            from_succs = th.zeros_like(flat).index_add_(0, src, flat[dst]) / out_deg.unsqueeze(-1)
            flat = th.relu(layer(th.cat([flat, from_preds, from_succs], dim=-1)))
            h = flat.reshape(batch, n, self.hidden) * node_mask.unsqueeze(-1)
        pooled = h.sum(dim=1) / node_mask.sum(dim=1, keepdim=True).clamp(min=1)
        return th.cat([h.flatten(1), node_mask, pooled], dim=1)


class _SplitLatent(nn.Module):
    """SB3's ``mlp_extractor`` slot: actor gets node embeddings + mask, critic the pooled."""

    def __init__(self, n_nodes: int, hidden: int) -> None:
        super().__init__()
        self.split = n_nodes * hidden + n_nodes
        self.latent_dim_pi = self.split
        self.latent_dim_vf = hidden

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return features[:, : self.split]

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return features[:, self.split :]


class _NodeHead(nn.Module):
    """Shared per-node logits; padded nodes get a one-hot row (choice 0, probability 1)."""

    def __init__(self, n_nodes: int, hidden: int, n_choices: int) -> None:
        super().__init__()
        self.n_nodes, self.hidden, self.n_choices = n_nodes, hidden, n_choices
        self.linear = nn.Linear(hidden, n_choices)

    def forward(self, latent: th.Tensor) -> th.Tensor:
        batch = latent.shape[0]
        nodes = latent[:, : self.n_nodes * self.hidden].reshape(batch, self.n_nodes, self.hidden)
        mask = latent[:, self.n_nodes * self.hidden :].bool().unsqueeze(-1)
        logits = self.linear(nodes)
        padded = th.full_like(logits, _MASKED)
        padded[..., 0] = 0.0
        return th.where(mask, logits, padded).flatten(1)


class GraphPolicy(ActorCriticPolicy):
    """Actor-critic policy for go_gym's single-task envs (MultiDiscrete over all nodes).

    Keyword arguments ``hidden`` (64) and ``layers`` (2) size the `GraphEncoder`.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.MultiDiscrete,
        lr_schedule: Any,
        hidden: int = 64,
        layers: int = 2,
        **kwargs: Any,
    ) -> None:
        if not isinstance(action_space, spaces.MultiDiscrete) or len(set(action_space.nvec)) != 1:
            raise ValueError(
                "GraphPolicy needs a MultiDiscrete action space with the same number of choices "
                f"for every node (a go_gym single-task env), got {action_space}"
            )
        self._hidden = hidden
        self._n_nodes, self._n_choices = len(action_space.nvec), int(action_space.nvec[0])
        kwargs.setdefault("features_extractor_class", GraphEncoder)
        kwargs.setdefault("features_extractor_kwargs", {"hidden": hidden, "layers": layers})
        kwargs.setdefault("ortho_init", False)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        # SB3 types the slot MlpExtractor, and calls only what _SplitLatent has.
        self.mlp_extractor = _SplitLatent(self._n_nodes, self._hidden)  # type: ignore[assignment]

    def _build(self, lr_schedule: Any) -> None:
        # Not super()._build: with a MultiDiscrete space it would allocate a dense
        # (N*h) x (N*a) action layer, gigabytes at a few thousand nodes.
        self._build_mlp_extractor()
        self.action_dist = NodeCategorical(self._n_nodes, self._n_choices)
        self.action_net = _NodeHead(self._n_nodes, self._hidden, self._n_choices)
        self.value_net = nn.Sequential(  # type: ignore[assignment]  # SB3 types it nn.Linear
            nn.Linear(self._hidden, self._hidden), nn.Tanh(), nn.Linear(self._hidden, 1)
        )
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]  # as SB3's own _build
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor) -> Distribution:
        return self.action_dist.proba_distribution(action_logits=self.action_net(latent_pi))


def node_categorical_for(env: gym.Env) -> NodeCategorical:
    """A `NodeCategorical` sized for ``env``'s MultiDiscrete action space."""
    if not isinstance(env.action_space, spaces.MultiDiscrete):
        raise ValueError(
            f"a NodeCategorical needs a MultiDiscrete action space, got {env.action_space}"
        )
    nvec = np.asarray(env.action_space.nvec)
    return NodeCategorical(len(nvec), int(nvec[0]))
