"""Lightning tasks shared by every network: how a batch becomes logits, a loss and metrics."""

from zoo.tasks.classifier import STAGES, Classifier, Stage
from zoo.tasks.delineation import DelineationClassifier
from zoo.tasks.node_classifier import NodeClassifier

__all__ = ["STAGES", "Classifier", "DelineationClassifier", "NodeClassifier", "Stage"]
