"""The one recipe every entry point reads: Train page defaults = CLI defaults = demos = tests = benchmarks."""

from __future__ import annotations

from .data.spec import DatasetSpec
from .model.config import get_preset
from .train.config import TrainConfig
from .train.launch import TrainRequest

# The model every page starts from, and the command line's default.
DEFAULT_PRESET = "resnet20"

# The Train page's defaults (= `python -m resnet_core.train` with no flags) and the Grad-CAM demo model.
# Measured on a 2-core CPU through the command line, process start included: ResNet-20 reaches 94.2%
# validation accuracy in 45 s, and 86.9% after 3 epochs (the README's line) in 36 s. Batch 32 rather than 64:
# the same images, twice the steps, at nearly the same cost per image (3 epochs at batch 64: 79.1%).
# benchmarks/bench_recipe.py prints these figures; SHAPES_FULL_DATA's 10,000 images are in bench_demos.py.
SHAPES_DATA = DatasetSpec(kind="shapes", n_train=6_000, n_val=1_000, seed=0, image_size=32)
SHAPES_FULL_DATA = DatasetSpec(kind="shapes", n_train=10_000, n_val=1_000, seed=0, image_size=32)
SHAPES_TRAIN = TrainConfig(epochs=4, batch_size=32, optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True,
                           weight_decay=5e-4, schedule="cosine", warmup_epochs=0.5, crop_padding=2)

# The degradation demo trains four nets, two of them 56 layers deep, with one recipe chosen on principle and
# never tuned per net: He et al. 2015's CIFAR setup (SGD, momentum 0.9, no Nesterov, weight decay 1e-4, pad-and-crop
# plus flip) scaled to a lecture's budget. Batch 32 rather than their 128: at the same cost in images it takes 4x
# the steps, which a deep plain net needs; the learning rate scales with the batch as Goyal et al. 2017 prescribe
# (0.1 x 32 / 128 = 0.025), reached by a linear warm-up over the first epoch (He et al. warm ResNet-110 up at a low
# rate too), then a cosine decay to zero. benchmarks/bench_degradation_robustness.py trains it over seeds and
# thread counts and prints where the lesson holds; the README quotes its table.
# Why plain-56 needs several times this budget to leave chance (measured): at initialisation its gradient grows
# ~1.18x per layer going back (first conv 1203, last 0.16 for one batch; ResNet-56's whole norm is ~6), so the
# first steps, however small the rate, inflate the early layers' weights, and with BatchNorm that shrinks their
# effective learning rate: it sits near chance for 7 to 16 epochs (its first validation above 20%, seeds 2, 1, 0),
# then learns. Clipping the gradient norm at 1 or 5, and Adam at 1e-3, left it at chance over these 4 epochs
# (seed 0); they are not used.
DEGRADATION_DEPTHS = (20, 56)
DEGRADATION_DATA = DatasetSpec(kind="shapes", n_train=3_000, n_val=500, seed=0, image_size=32)
# Four validation passes per epoch: the accuracy chart has points long before the first epoch ends.
DEGRADATION_TRAIN = TrainConfig(epochs=4, batch_size=32, optimizer="sgd", lr=0.025, momentum=0.9, nesterov=False,
                                weight_decay=1e-4, schedule="cosine", warmup_epochs=1.0, crop_padding=2,
                                val_per_epoch=4)

SWEEP_BATCH = 32  # images per gradient measurement in the depth sweep
LOCALIZATION_IMAGES = 64  # held-out Shapes images the Grad-CAM demo scores
# The seed of those held-out Shapes images (the Grad-CAM page's samples and localization check): apart from
# every training seed, so the images checked on were never trained on.
CHECK_SEED = 90_210


def demo_request(residual: bool, name: str) -> TrainRequest:
    """The one-click demo run, for a worker: ResNet-20, or its plain twin, on SHAPES_DATA with the app's one
    Shapes recipe (SHAPES_TRAIN), in the run folder `name`."""
    return TrainRequest(get_preset(DEFAULT_PRESET if residual else "plain20"), SHAPES_DATA, SHAPES_TRAIN, name)
