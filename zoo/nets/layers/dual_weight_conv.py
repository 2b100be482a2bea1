"""The delineation notebook's dual-weight graph convolution ``H W1 + Â H W2``."""

import warnings

import torch
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import add_self_loops, remove_self_loops, scatter

import zoo.checks as checks


def seed_norm(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge weights of the seed's operator ``Â = D^-1/2 (A + I)^T D^-1/2`` with ``D = rowsum(A + I)``.

    ``A[i, j]`` is the weight of edge ``i -> j`` (``edge_index[0] = i``). ``(Â H)[j] = sum_i Â[j, i] H[i]``
    ``= sum_i (A + I)[i, j] H[i] / sqrt(d_i d_j)``: node ``j`` gathers along its incoming edges, which is PyG's
    ``source_to_target`` propagation, but the degrees are the (weighted) OUT-degrees ``d_i = sum_k (A + I)[i, k]``,
    which is ``gcn_norm(flow="target_to_source")``. The identity is added to every node, also to nodes that already
    have a self-loop (``A + I`` adds 1 to an existing self-flow; ``gcn_norm``'s own ``add_remaining_self_loops``
    would not), so the loops are added here and ``gcn_norm`` adds none.

    Returns:
        ``edge_index [2, E + N]`` (the input edges then one loop per node) and their normalised weights.
    """
    edge_index, edge_weight = add_self_loops(edge_index, edge_weight, fill_value=1.0, num_nodes=num_nodes)
    return gcn_norm(edge_index, edge_weight, num_nodes, add_self_loops=False, flow="target_to_source")


def mean_norm(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge weights of ``D_in^-1 (A + I)^T``: each node takes the weighted MEAN of the rows it gathers (itself too).

    Rows of the aggregate stay on the scale of the input rows (a score distribution stays a distribution),
    unlike :func:`seed_norm`, whose row sums range over three orders of magnitude on raw commuter counts.
    """
    edge_index, edge_weight = add_self_loops(edge_index, edge_weight, fill_value=1.0, num_nodes=num_nodes)
    deg = scatter(edge_weight, edge_index[1], dim=0, dim_size=num_nodes, reduce="sum")  # [N] weighted in-degree
    return edge_index, edge_weight / deg[edge_index[1]]


def share_norm(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge weights of ``D_in^-1 A^T`` without self-flows: node ``j`` takes the flow-share-weighted mean of the
    OTHER nodes it gathers (``w_ij / sum_k w_kj``), never its own row.

    With the training labels as input rows (``DelineationGCN``'s ``known``), a training node's aggregate then
    holds only its neighbours' labels, exactly as a held-out node's does.
    """
    edge_index, edge_weight = remove_self_loops(edge_index, edge_weight)
    if edge_weight is None:
        edge_weight = torch.ones(edge_index.size(1), device=edge_index.device)
    deg = scatter(edge_weight, edge_index[1], dim=0, dim_size=num_nodes, reduce="sum")  # [N] weighted in-degree
    return edge_index, edge_weight / deg[edge_index[1]].clamp_min(1e-12)


NORMS = {"seed": seed_norm, "mean": mean_norm, "share": share_norm}

# Device type -> node count below which the cached operator is kept dense. CPU: the CSR product was faster at
# every measured N (208..4,000 nodes; benchmarks comparison 5), so never dense. CUDA: sparse was slower up to
# N = 10,000 on an H100 (earlier project measurement, not repeated here: GPU pending).
DENSE_BELOW: dict[str, int] = {"cpu": 0, "cuda": 10_000}


class DualWeightConv(MessagePassing):
    """``H' = H W1 + Â M W2`` (no activation), ``Â`` the seed's normalised operator (see :func:`seed_norm`).

    ``M`` (the rows the operator gathers) is ``H`` unless ``messages`` is given (e.g. ``H`` with the training
    labels in the training rows). With ``directions=2`` a second operator gathers along the reversed edges with
    its own weight: ``H W1 + Â M W2 + Â_rev M W2_rev``.

    Sparse message passing: ``Â`` is never built as a dense ``N x N`` matrix, except below ``dense_below`` nodes
    with ``cached``, where a dense product is faster (see :data:`DENSE_BELOW` and benchmarks comparison 5).

    Args:
        in_features: Input width.
        out_features: Output width.
        w2_init: ``zeros`` (the seed's later rounds) or ``kaiming`` (its first round: Kaiming-normal, fan-out).
        normalization: ``seed`` (:func:`seed_norm`, the notebook's operator), ``mean`` (:func:`mean_norm`) or
            ``share`` (:func:`share_norm`).
        cached: Compute ``Â`` once and reuse it (transductive training on one fixed graph, as ``GCNConv``'s
            ``cached``), and reuse ``Â M`` for an input ``M`` that carries no gradient (a round's fixed input
            scores, as ``SGConv``'s ``cached`` reuses its propagated features): the epochs of a round then do no
            sparse product at all. Call :meth:`reset_cache` when the graph changes.
        directions: 1 (gather along the edges) or 2 (also along the reversed edges, with its own ``W2``).
        dense_below: With ``cached``, keep ``Â`` as a dense matrix on graphs with fewer nodes than this;
            ``None``: :data:`DENSE_BELOW` of the device type.
    """

    MAX_CACHED_INPUTS = 8  # distinct gradient-free inputs whose Â M is kept (3 stages, with and without rows)

    def __init__(self, in_features: int, out_features: int, w2_init: str = "zeros",
                 normalization: str = "seed", cached: bool = False, directions: int = 1,
                 dense_below: int | None = None) -> None:
        super().__init__(aggr="add", flow="source_to_target")
        checks.integer("in_features", in_features)
        checks.integer("out_features", out_features)
        checks.choice("w2_init", w2_init, ("zeros", "kaiming"))
        checks.choice("normalization", normalization, tuple(NORMS))
        checks.choice("directions", directions, (1, 2))
        if dense_below is not None:
            checks.integer("dense_below", dense_below, low=0)
        self.normalization, self.cached, self.directions, self.dense_below = normalization, cached, directions, dense_below
        self._adj_t: list[torch.Tensor] | None = None  # cached Â (and Â_rev), [N, N] CSR or dense (row j gathers)
        # ids of (x, M[, rows]) -> (the tensors, their versions, (x, [Â M, ...]) of the rows); see cached_inputs.
        self._ax: dict[tuple[int, ...], tuple] = {}
        self.in_features, self.out_features, self.w2_init = in_features, out_features, w2_init
        self.weight1 = nn.Parameter(torch.empty(in_features, out_features))
        self.weight2 = nn.Parameter(torch.empty(in_features, out_features))
        self.weight2_reverse = nn.Parameter(torch.empty(in_features, out_features)) if directions == 2 else None
        self.reset_parameters()

    def reset_parameters(self, w2_init: str | None = None) -> None:
        """``W1 = I`` (rectangular identity), ``W2 = 0`` or Kaiming-normal; in place, so optimizers keep them."""
        with torch.no_grad():
            self.weight1.copy_(torch.eye(self.in_features, self.out_features))
            for weight in self.weights2:
                if (w2_init or self.w2_init) == "kaiming":
                    # The seed's W2 is [1, in, out]: kaiming_normal_(mode="fan_out") there means std = sqrt(2 / out).
                    weight.normal_(0.0, (2.0 / self.out_features) ** 0.5)
                else:
                    weight.zero_()

    @property
    def weights2(self) -> list[nn.Parameter]:
        """``W2`` of each direction."""
        return [self.weight2] if self.weight2_reverse is None else [self.weight2, self.weight2_reverse]

    def directed(self, edge_index: torch.Tensor) -> list[torch.Tensor]:
        """The edge sets of the directions: the edges, then (``directions=2``) the reversed edges."""
        return [edge_index] if self.directions == 1 else [edge_index, edge_index.flip(0)]

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None,
                messages: torch.Tensor | None = None, rows: torch.Tensor | None = None) -> torch.Tensor:
        # x: [N, in], messages: [N, in] (default x) -> [N, out], or [R, out] for the R selected `rows`
        m = x if messages is None else messages
        if self.cached:
            if self._adj_t is None or self._adj_t[0].device != x.device:
                self.reset_cache()
                self._adj_t = [self.operator(e, edge_weight, x.size(0)) for e in self.directed(edge_index)]
            x, axs = self.cached_inputs(x, m, rows)  # x and [Â m, ...], their `rows` only: [N or R, in] each
        else:
            axs = []
            for e in self.directed(edge_index):
                index, norm = NORMS[self.normalization](e, edge_weight, x.size(0))  # [2, E'], [E']
                axs.append(self.propagate(index, x=m, edge_weight=norm))  # Â m: [N, in]
            if rows is not None:
                x, axs = x[rows], [ax[rows] for ax in axs]
        out = torch.addmm(axs[0] @ self.weight2, x, self.weight1)  # H W1 + Â M W2 in one fused op: [N, out]
        if len(axs) == 2:
            out = torch.addmm(out, axs[1], self.weight2_reverse)  # + Â_rev M W2_rev
        return out

    def operator(self, edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int) -> torch.Tensor:
        """``Â`` as a sparse CSR ``[N, N]`` matrix (row ``j`` gathers node ``j``'s inputs), dense below ``dense_below``.

        Indices are int32 when they fit: the CPU (MKL) and CUDA (cuSPARSE) kernels take them as they are,
        where int64 indices are converted on every product.
        """
        n = num_nodes
        # A normal tensor even when first built in a validation pass under inference mode: training saves it for
        # the backward pass. PyTorch notes once per process that CSR support is "in beta".
        with torch.inference_mode(False), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            index, norm = NORMS[self.normalization](edge_index, edge_weight, n)  # [2, E'], [E']
            adj = torch.sparse_coo_tensor(index.flip(0), norm, (n, n), check_invariants=False).coalesce()
            dense_below = DENSE_BELOW.get(index.device.type, 0) if self.dense_below is None else self.dense_below
            if n < dense_below:
                return adj.to_dense()  # [N, N]
            adj = adj.to_sparse_csr()
            dtype = torch.int32 if max(adj.values().numel(), n) < 2**31 - 1 else torch.int64
            return torch.sparse_csr_tensor(adj.crow_indices().to(dtype), adj.col_indices().to(dtype), adj.values(),
                                           (n, n), check_invariants=False)

    def cached_inputs(self, x: torch.Tensor, m: torch.Tensor, rows: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``x`` and ``Â m`` of each direction (their ``rows`` only, if given) with the cached ``Â``.

        Remembered while ``x``, ``m`` and ``rows`` carry no gradient and stay the same, unchanged tensors (a
        round's fixed input scores): the steps of a round then do no product and no indexing at all.
        """
        keyed = (x,) if m is x else (x, m)
        if rows is not None:
            keyed += (rows,)
        key = tuple(map(id, keyed))
        hit = self._ax.get(key)
        if hit is not None and not (x.requires_grad or m.requires_grad) and hit[1] == tuple(t._version for t in keyed):
            return hit[2]  # the same tensors (the entry holds them, so their ids are not reused), unchanged

        axs = [adj @ m for adj in self._adj_t]  # sparse (CSR) or dense x dense products: [N, in] each
        result = (x, axs) if rows is None else (x[rows], [ax[rows] for ax in axs])
        if torch.is_inference_mode_enabled() or any(t.requires_grad or t.is_inference() for t in keyed):
            # A learned projection's or a previous layer's output (new every step), or a validation/test pass
            # under inference mode, whose tensors have no version counter and cannot be used in training later.
            return result
        if len(self._ax) >= self.MAX_CACHED_INPUTS:
            self._ax.clear()
        self._ax[key] = (keyed, tuple(t._version for t in keyed), result)  # holding the tensors keeps ids unique
        return result

    def reset_cache(self) -> None:
        """Forget the cached ``Â`` and ``Â M`` (see ``cached``)."""
        self._adj_t = None
        self._ax.clear()

    def message(self, x_j: torch.Tensor, edge_weight: torch.Tensor) -> torch.Tensor:
        return edge_weight.view(-1, 1) * x_j

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, w2_init={self.w2_init}, normalization={self.normalization}, "
                f"directions={self.directions}")
