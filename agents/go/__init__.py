"""The GO agent (Zhou et al., NeurIPS 2020): a transferable graph optimiser trained by PPO.

- `agents.go.model`: `GOPolicy` (GraphSAGE encoder, graph-embedding FiLM, segment-recurrent
  attention, one pass per task) and `prepare` (observation -> network input).
- `agents.go.ppo`: `PPOTrainer`, one-shot PPO (one forward, K sampled decisions, one batch of
  simulations per iteration).
- `agents.go.tree`: `PlacementTree`, placement as device offsets along a maximum spanning
  tree (``placement_actions="tree"``, or ``"tree-solo"`` with moves of an op alone);
  `agents.go.roles`: the ops tied by ``tie_roles``.
- `agents.go.agent`: `GOAgent` for the runner (``go``, ``go-zeroshot``); with
  ``refine_share`` its last evaluations refine PPO's best placement by boundary descent
  (`agents.search.boundary_descent`).
- `agents.go.checkpoint`: safe checkpoints (``weights_only=True``, a checksum of the
  weights, clear errors for files that are not checkpoints).
- `agents.go.train`: the ``go-gym train`` command.
- `agents.go.factories`: the registry's ``go`` / ``go-zeroshot`` factories (torch loads lazily).

Nothing is imported here, so ``import agents`` stays free of torch.
"""
