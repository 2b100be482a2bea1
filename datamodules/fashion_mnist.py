"""Fashion-MNIST clothing images."""

from typing import ClassVar

from torchvision.datasets import MNIST, FashionMNIST

from datamodules.vision import VisionDataModule


class FashionMNISTDataModule(VisionDataModule):
    """Fashion-MNIST: 28x28 grey clothing images, 10 classes (55k train / 5k val / 10k test)."""

    dataset_cls: ClassVar[type[MNIST]] = FashionMNIST
    mean: ClassVar[float] = 0.2860
    std: ClassVar[float] = 0.3530
