"""The flow operator of a weighted directed graph (direction x normalisation), and the flow shares it gives.

The nets' name for :mod:`zoo.transforms.flow_shares`, where the one implementation lives (pure torch / PyG, below
both the nets and the DataModules, so the NYC flow-share features and the ``flow_vote`` and ``label_propagation``
baselines read the flows through the same code). See that module for the convention and the choices.
"""

from zoo.transforms.flow_shares import DIRECTIONS, NORMALIZATIONS, check_choice, flow_operator, flow_votes

__all__ = ["DIRECTIONS", "NORMALIZATIONS", "check_choice", "flow_operator", "flow_votes"]
