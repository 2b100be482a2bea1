"""Delineation GCN: the city-delineation notebook's clamp-and-normalise dual-weight graph network."""

from typing import ClassVar

import torch
from torch import nn
from torch_geometric.utils import to_undirected

import zoo.checks as checks
from zoo.nets.layers.dual_weight_conv import DualWeightConv


class DelineationGCN(nn.Module):
    """Borough scores refined by ``H' = rownorm(clamp(H W1 + Â H W2, 0, 1))`` layers (seed notebook ``000``).

    The input rows are read as class scores (``num_classes`` columns): the seed feeds its 5 ZIP features as the
    5 borough scores (``W1 = I``), so without ``input_projection`` the data must have ``num_features ==
    num_classes``. With ``input_projection`` a learned linear map turns any features into initial scores first.
    Only rows in ``update_mask`` take the network's output; the other rows keep their input scores (the seed's
    masking). The output is used as logits by the task: row-normalised scores (the seed), or their log
    (``log_output``), which makes the cross-entropy a proper log-likelihood of the scores.

    Args:
        in_features: Node feature width.
        num_classes: Number of classes (width of the scores).
        num_layers: Dual-weight layers (the seed: 1).
        input_projection: Learn ``Linear(in_features, num_classes)`` before the layers.
        w2_init: Initial ``W2`` of the first round, ``kaiming`` (the seed) or ``zeros``; later rounds use zeros.
        symmetrize: Use ``A + A^T`` (flows in both directions) instead of the directed work -> home flows.
        reverse: Use ``A^T``: each node gathers from the nodes its edges point to (a work ZIP from the home ZIPs of
            its workers) instead of from the nodes pointing to it (the seed: a home ZIP from its residents' work ZIPs).
        normalization: ``seed`` (the notebook's ``D^-1/2 (A + I)^T D^-1/2``) or ``mean`` (flow-weighted mean).
        log_weights: Use ``log(1 + w)`` instead of the raw commuter counts as edge weights.
        log_output: Return ``log(scores)`` instead of the scores (with ``activation=clamp``).
        cached: Compute the normalised operator once (one fixed graph, transductive: the default in the configs).
        activation: ``clamp`` (the seed: scores ``rownorm(clamp(z, 0, 1))``) or ``none`` (``z`` are the logits and
            the scores their softmax; the clamp's flat regions stop the gradient of every clamped entry).
        directions: 1 (one operator) or 2 (also the reversed flows, with their own ``W2``; see ``DualWeightConv``).
        dense_below: Keep the cached operator dense on graphs with fewer nodes (faster there, see ``DualWeightConv``).
    """

    input_kinds: ClassVar[tuple[str, ...]] = ("graph",)
    uses_edges: ClassVar[bool] = True

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        num_layers: int = 1,
        input_projection: bool = False,
        w2_init: str = "kaiming",
        symmetrize: bool = False,
        reverse: bool = False,
        normalization: str = "seed",
        log_weights: bool = False,
        log_output: bool = False,
        cached: bool = False,
        activation: str = "clamp",
        directions: int = 1,
        dense_below: int | None = None,
    ) -> None:
        super().__init__()
        checks.integer("in_features", in_features)
        checks.integer("num_classes", num_classes)
        checks.integer("num_layers", num_layers)
        checks.choice("activation", activation, ("clamp", "none"))
        if not input_projection and in_features != num_classes:
            raise ValueError(
                f"DelineationGCN reads the {in_features} input features as the {num_classes} class scores (as the "
                f"seed does), which needs in_features == num_classes. Set model.net.input_projection=true to learn "
                f"a projection from the features to the scores."
            )
        self.num_classes = num_classes
        self.symmetrize, self.reverse = symmetrize, reverse
        self.log_weights, self.log_output, self.activation = log_weights, log_output, activation
        self.projection = nn.Linear(in_features, num_classes) if input_projection else None
        self.layers = nn.ModuleList(
            DualWeightConv(num_classes, num_classes, w2_init, normalization, cached, directions, dense_below)
            for _ in range(num_layers)
        )

    def reset_layers(self, w2_init: str = "zeros") -> None:
        """Back to ``W1 = I`` and ``W2 = w2_init`` (in place): the start of a new round."""
        for layer in self.layers:
            layer.reset_parameters(w2_init)

    def edges(self, edge_index: torch.Tensor, edge_weight: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The graph the layers use: optionally reversed, symmetrised and log-weighted."""
        if self.reverse:
            edge_index = edge_index.flip(0)  # [2, E]: i -> j becomes j -> i
        if self.symmetrize:
            edge_index, edge_weight = to_undirected(edge_index, edge_weight, reduce="sum")
        if self.log_weights and edge_weight is not None:
            edge_weight = torch.log1p(edge_weight)
        return edge_index, edge_weight

    def initial_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Input features ``[N, in_features]`` -> initial scores ``[N, num_classes]``."""
        return self.projection(x) if self.projection is not None else x

    def activate(self, z: torch.Tensor) -> torch.Tensor:
        """A layer's output ``[*, C]`` -> scores whose rows sum to 1: the seed's clamp to [0, 1] and renormalisation
        (all-zero rows stay 0), or a softmax (``activation=none``)."""
        if self.activation == "clamp":
            out = torch.clamp(z, 0.0, 1.0)
            return out / out.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return z.softmax(dim=1)

    def logits(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_weight: torch.Tensor | None = None,
        update_mask: torch.Tensor | None = None,
        project: bool = True,
        known: tuple[torch.Tensor, torch.Tensor] | None = None,
        rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and scores ``[N, num_classes]``: the layers' output on ``update_mask`` rows, the input elsewhere.

        ``x`` is ``[N, in_features]`` (``project=True``) or a later round's input scores ``[N, num_classes]``.
        ``known = (mask [N], scores [N, C])``: rows every layer's operator gathers from these fixed scores instead
        of the current ones (the training labels, as label propagation does); the rows' own ``H W1`` term never
        reads them. ``rows`` (a mask or index of updated rows): return only these rows ``[R, C]``; with one layer
        only they are computed (the training steps of a round).
        """
        if rows is not None and len(self.layers) > 1:  # every row is needed, then the selected ones
            logits, out = self.logits(x, edge_index, edge_weight, update_mask, project, known)
            return logits[rows], out[rows]
        h = self.initial_scores(x) if project else x  # [N, C]
        edge_index, edge_weight = self.edges(edge_index, edge_weight)
        if rows is not None:
            messages = None if known is None else torch.where(known[0].view(-1, 1), known[1], h)  # [N, C]
            z = self.layers[0](h, edge_index, edge_weight, messages, rows)  # [R, C]
            out = self.activate(z)
            if self.activation == "none":
                return z, out
            return (torch.log(out.clamp_min(1e-6)) if self.log_output else out), out
        out = h
        for layer in self.layers:
            messages = None if known is None else torch.where(known[0].view(-1, 1), known[1], out)  # [N, C]
            z = layer(out, edge_index, edge_weight, messages)  # [N, C]
            out = self.activate(z)
        keep = None if update_mask is None else update_mask.view(-1, 1)
        if keep is not None:
            out = torch.where(keep, out, h)  # other rows keep their input: [N, C]
        if self.activation == "none":
            return (z if keep is None else torch.where(keep, z, torch.log(h.clamp_min(1e-6)))), out
        return (torch.log(out.clamp_min(1e-6)) if self.log_output else out), out

    def scores(self, *args: torch.Tensor | None, **kwargs: object) -> torch.Tensor:
        """Scores ``[N, num_classes]`` (rows sum to 1): see :meth:`logits`."""
        return self.logits(*args, **kwargs)[1]

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_weight: torch.Tensor | None = None,
        update_mask: torch.Tensor | None = None,
        project: bool = True,
        known: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        # x: [N, in_features] or [N, C] -> logits [N, C] (the scores or their log; with activation=none: z)
        return self.logits(x, edge_index, edge_weight, update_mask, project, known)[0]
