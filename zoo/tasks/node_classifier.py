"""Full-batch node classification on one PyG graph."""

from typing import Any

import torch

from zoo.tasks.classifier import Classifier, Stage

POSITIONAL = ("x", "edge_index", "edge_weight")  # what graph networks get by position


class NodeClassifier(Classifier):
    """Full-batch node classification on a PyG ``Data`` with ``train_mask``/``val_mask``/``test_mask``.

    Graph networks (``uses_edges = True``) get ``(x, edge_index, edge_weight)``; other networks
    (MLP, logistic regression) see the node features alone, as a no-graph baseline. Graph attributes a network
    ``needs`` beyond those come by name (e.g. ``y_train``: the training labels, -1 on every other node, so no
    validation or test label can reach a network's input; ``initial_feat``: the data's prior guess).
    """

    def forward(self, data: Any) -> torch.Tensor:  # type: ignore[override]
        extra = {name: data[name] for name in getattr(self.net, "needs", ()) if name not in POSITIONAL}
        if getattr(self.net, "uses_edges", False):
            return self.net(data.x, data.edge_index, data.get("edge_weight"), **extra)
        return self.net(data.x, **extra)

    def forward_batch(self, batch: Any, stage: Stage) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch)  # [N, num_classes]: every node, every stage
        if stage == "predict":
            return logits, batch.y
        mask = batch[f"{stage}_mask"]
        return logits[mask], batch.y[mask]
