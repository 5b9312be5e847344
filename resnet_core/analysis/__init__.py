"""Plain versus residual, measured: gradient profiles, depth sweep, the recorder, twin training, lesions, shattering.

Everything here runs real networks from `resnet_core.model` and measures them; nothing is
simulated. The definitions the charts rely on:

* **Gradient profile** (`gradient_norms`): for one batch, in train mode (BatchNorm uses the
  batch's statistics, as in training), the loss is cross-entropy between the logits and the
  given labels (random labels when the batch is random). We record the L2 norm of the gradient
  of every convolution weight, in the order the forward pass runs them (input to output), and
  the L2 norm of the gradient with respect to each block's output. Nothing is left on the model:
  gradients come from `torch.autograd.grad` (no `.grad` is written), BatchNorm running
  statistics and train/eval modes are restored afterwards.
* **First / last ratio**: "first" is the stem's first convolution (the one that sees the image,
  `conv1`, or `conv1.0` for the deep stem); "last" is the last convolution on the main path
  before the pooling and the fc (`layer3.{n-1}.conv2` in a CIFAR net). Shortcut projections are
  not on the main path. A ratio far above 1 means the gradient grows towards the input.
* **Depth sweep** (`depth_sweep`): CIFAR ResNets of depth 6n+2 (He et al. 2015: three stages of
  n basic blocks, widths 16/32/64, option-A shortcuts) and their plain twins, at
  initialization, on a random Gaussian batch with random labels; the same seed builds the
  residual net and its plain twin and draws the same batch.
* **Lesion study** (`lesion_study`, Veit et al. 2016): delete one block at test time (eval
  mode). In a residual net only the shortcut path remains (`y = relu(shortcut(x))`, or
  `shortcut(x)` for a pre-activation block); in a plain net the block is skipped (`y = x`)
  where its input and output shapes agree; blocks that change the shape cannot be skipped in a
  plain net and are reported as not applicable.
* **Gradient shattering** (`gradient_shattering`, Balduzzi et al. 2017): the gradient of a
  fixed random projection of the logits with respect to the input, at `n_points` inputs evenly
  spaced on the segment between two images. The points form one batch in train mode (as the
  paper's 1-D grid does), and we report the Pearson correlation between gradients at
  neighbouring points (and at larger lags): near 1 means a smooth gradient field, near 0 means
  shattered, white-noise-like gradients.

"""

from ..train.block_grads import BlockGradRecorder
from .common import (
    MAX_DEPTH,
    MIN_DEPTH,
    SWEEP_DEPTHS,
    GradientError,
    check_batch,
    check_depth,
    check_depths,
    check_model,
    check_pair,
    cifar_config,
    config_label,
    measuring,
    parse_depths,
    random_batch,
    twin_configs,
)
from .lesion import LesionEntry, LesionResult, lesion_job, lesion_study
from .profiles import Band, GradientProfile, PairProfile, ProfileBands, gradient_norms, profile_pair, zero_init_warning
from .shattering import ShatteringProfile, ShatteringSweep, gradient_shattering, shattering_job, shattering_sweep
from .sweep import SweepPoint, SweepResult, depth_sweep, sweep_job
from .twins import SideBySide

__all__ = [
    "MAX_DEPTH",
    "MIN_DEPTH",
    "SWEEP_DEPTHS",
    "Band",
    "BlockGradRecorder",
    "GradientError",
    "GradientProfile",
    "LesionEntry",
    "LesionResult",
    "PairProfile",
    "ProfileBands",
    "ShatteringProfile",
    "ShatteringSweep",
    "SideBySide",
    "SweepPoint",
    "SweepResult",
    "check_batch",
    "check_depth",
    "check_depths",
    "check_model",
    "check_pair",
    "cifar_config",
    "config_label",
    "depth_sweep",
    "gradient_norms",
    "gradient_shattering",
    "lesion_job",
    "lesion_study",
    "measuring",
    "parse_depths",
    "profile_pair",
    "random_batch",
    "shattering_job",
    "shattering_sweep",
    "sweep_job",
    "twin_configs",
    "zero_init_warning",
]
