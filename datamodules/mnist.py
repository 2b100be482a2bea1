"""MNIST handwritten digits."""

from typing import ClassVar

from torchvision.datasets import MNIST

from datamodules.vision import VisionDataModule


class MNISTDataModule(VisionDataModule):
    """MNIST: 28x28 grey digits, 10 classes (55k train / 5k val / 10k test)."""

    dataset_cls: ClassVar[type[MNIST]] = MNIST
    mean: ClassVar[float] = 0.1307
    std: ClassVar[float] = 0.3081
