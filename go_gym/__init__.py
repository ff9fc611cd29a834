"""go_gym: Gymnasium environments and simulators for learned ML-compiler graph optimisation."""

__version__ = "0.1.0"
