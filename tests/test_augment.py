"""Training-batch augmentation: new parameters per sample, only on training batches, typos refused."""

import pytest
import torch
from torchvision.transforms import v2

from datamodules.augment import PerSampleAffine, PerSampleErasing, PerSampleHorizontalFlip
from datamodules.mnist import MNISTDataModule


def _same_images(b: int = 64) -> torch.Tensor:
    """``b`` copies of one asymmetric image: a bright 6x4 block left of the centre, float [B, 1, 28, 28]."""
    x = torch.zeros(b, 1, 28, 28)
    x[:, :, 11:17, 6:10] = 1.0
    return x


def _distinct(out: torch.Tensor) -> int:
    return len(torch.unique(out.flatten(1), dim=0))


@pytest.mark.parametrize(
    ("transform", "at_least"),
    [(PerSampleAffine(degrees=15, translate=(0.1, 0.1), scale=(0.9, 1.1)), 60), (PerSampleHorizontalFlip(), 2),
     (PerSampleErasing(p=0.9), 40)],
    ids=["affine", "flip", "erasing"],
)
def test_samples_of_one_batch_get_different_augmentations(transform, at_least):
    torch.manual_seed(0)
    x = torch.rand(1, 1, 28, 28).expand(64, -1, -1, -1).clone()  # 64 copies of one noise image
    out = transform(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert _distinct(out) >= at_least
    # One stock v2 transform on the same batch draws one parameter set: every sample comes out the same.
    assert _distinct(v2.RandomAffine(degrees=15, translate=(0.1, 0.1))(x)) == 1


def test_affine_shifts_stay_within_translate_and_keep_the_content():
    torch.manual_seed(0)
    x = _same_images(256)
    out = PerSampleAffine(translate=(0.1, 0.2))(x)
    grid = torch.arange(28.0)

    def centre(img: torch.Tensor) -> torch.Tensor:  # [B, 1, H, W] -> centre of mass [B, 2] (row, col)
        mass = img.sum((1, 2, 3))
        return torch.stack([(img.sum((1, 3)) * grid).sum(1) / mass, (img.sum((1, 2)) * grid).sum(1) / mass], 1)

    moved = centre(out) - centre(x)
    assert moved[:, 0].abs().max() <= 0.2 * 28 + 1e-3 and moved[:, 1].abs().max() <= 0.1 * 28 + 1e-3
    assert moved[:, 0].abs().max() > 0.15 * 28 and moved[:, 1].abs().max() > 0.07 * 28  # the range is used
    torch.testing.assert_close(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # nothing left the image
    torch.testing.assert_close(PerSampleAffine()(x), x)  # no rotation, zoom or shift: the identity


def test_flip_mirrors_each_sample_or_leaves_it():
    torch.manual_seed(0)
    x = _same_images()
    out = PerSampleHorizontalFlip(p=0.5)(x)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert ((out == x).flatten(1).all(1) ^ flipped).all() and 0 < flipped.sum() < len(x)
    assert torch.equal(PerSampleHorizontalFlip(p=0.0)(x), x)


def test_erasing_fills_one_rectangle_of_the_drawn_size():
    torch.manual_seed(0)
    x = torch.ones(128, 1, 28, 28)
    out = PerSampleErasing(p=1.0, scale=(0.05, 0.2), value=0.0)(x)
    erased = out[:, 0] == 0  # [B, H, W]
    area = erased.flatten(1).float().mean(1)
    assert (area > 0.02).all() and (area < 0.3).all()  # the scale range, up to rounding of the sides
    rows, cols = erased.any(2), erased.any(1)  # a rectangle: area == (rows it covers) x (columns it covers)
    assert torch.equal(erased.flatten(1).sum(1), rows.sum(1) * cols.sum(1))
    assert torch.equal(PerSampleErasing(p=0.0)(x), x)


def test_only_training_batches_are_augmented(data_dir):
    dm = MNISTDataModule(data_dir=data_dir, batch_size=64, eval_batch_size=50, val_size=100,
                         augment=[PerSampleErasing(p=1.0, value=0.5)])
    dm.prepare_data()
    dm.setup("fit")
    for split, loader in (("val", dm.val_dataloader()), ("test", dm.test_dataloader())):
        x, _ = next(iter(loader))
        torch.testing.assert_close(x, dm.normalise(dm.splits[split][0][:50]))
    loader = dm.train_dataloader()
    x, _ = next(iter(loader))
    plain = dm.normalise(dm.splits["train"][0][loader.sampler.indices(torch.device("cpu"))[:64]])
    assert x.shape == plain.shape and (x != plain).flatten(1).any(1).all()  # every training sample changed


def test_experiment_configs_build_the_augmentation(make_cfg):
    from zoo.run.facts import load_data

    dm = load_data(make_cfg("experiment=cnn_fashion_mnist_best"))
    assert [type(t) for t in dm.augment.transforms] == [PerSampleHorizontalFlip, PerSampleAffine, PerSampleErasing]


def test_a_mistyped_augmentation_key_is_refused(make_cfg):
    from zoo.errors import ConfigError
    from zoo.run.runner import train

    with pytest.raises(ConfigError, match=r"data\.augment\.0\.degree"):
        train(make_cfg("experiment=cnn_mnist_best", "+data.augment.0.degree=5"))


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda: PerSampleHorizontalFlip(p=1.5), r"^p=1\.5: must be in \[0, 1\]$"),
     (lambda: PerSampleErasing(p=-1), r"^p=-1: must be in \[0, 1\]$"),
     (lambda: PerSampleErasing(scale=(0.3, 0.1)), r"^scale=\[0\.3, 0\.1\]: must be \[min, max\] with min <= max$"),
     (lambda: PerSampleErasing(scale=(0.1, 2)), r"^scale\[1\]=2: must be in \(0, 1\]$"),
     (lambda: PerSampleErasing(ratio=(0, 1)), r"^ratio\[0\]=0: must be > 0$"),
     (lambda: PerSampleErasing(value=float("nan")), r"^value=nan: must be a finite number$"),
     (lambda: PerSampleAffine(translate=(5, 5)), r"^translate\[0\]=5: must be in \[0, 1\]$"),
     (lambda: PerSampleAffine(translate=(0.1,)), r"^translate=\(0\.1,\): must be a list of two numbers$"),
     (lambda: PerSampleAffine(scale=(0, 1)), r"^scale\[0\]=0: must be > 0$"),
     (lambda: PerSampleAffine(degrees=-10), r"^degrees=-10: must be in \[0, 180\]$")],
    ids=["flip-p", "erasing-p", "erasing-scale-order", "erasing-scale", "erasing-ratio", "erasing-value",
         "affine-shift-500%", "affine-translate-one", "affine-scale", "affine-degrees"],
)
def test_augmentation_values_are_range_checked(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_an_augmentation_value_out_of_range_names_its_config_key(make_cfg):
    from zoo.errors import ConfigError
    from zoo.run.runner import train

    # Hydra's full_key of a list item reads "data.augment0"; zoo/run/build.py names the key a user types
    with pytest.raises(ConfigError, match=r"^data\.augment\.0\.p=1\.5: must be in \[0, 1\]$"):
        train(make_cfg("experiment=cnn_fashion_mnist_best", "data.augment.0.p=1.5"))


@pytest.mark.parametrize("augment", [[0.5], "flip", [None]], ids=["a-number", "a-string", "null-item"])
def test_an_augment_list_of_non_transforms_is_refused(data_dir, augment):
    with pytest.raises(ValueError, match=r"^data\.augment=.*: must be a list of transforms"):
        MNISTDataModule(data_dir=data_dir, augment=augment)


def test_a_list_item_key_gets_its_dot_only_where_it_does_not_resolve():
    from omegaconf import OmegaConf

    from zoo.run.build import _list_items_dotted

    cfg = OmegaConf.create({"data": {"augment": [{"p": 1.5}], "conv1": {"p": 1.5}, "layers": {"12": 1}}})
    assert _list_items_dotted(cfg.data, "data.augment0") == "data.augment.0"
    assert _list_items_dotted(cfg.data, "data.conv1") == "data.conv1"  # resolves as it is
    assert _list_items_dotted(cfg.data, "data.other3") == "data.other3"  # nothing to resolve: kept
    assert _list_items_dotted(cfg.data, "data.layers.12") == "data.layers.12"
