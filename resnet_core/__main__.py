"""Command line: `python -m resnet_core presets`, `summary resnet50 --size 224`, `demos`.

Training has its own entry point: `python -m resnet_core.train --help`.
"""

from __future__ import annotations

import argparse
import sys

from .model.config import ConfigError, ResNetConfig, default_image_size, get_preset, list_presets, preset_note
from .model.model import build_model
from .model.summary import format_count, summarize


def _load_config(spec: str) -> ResNetConfig:
    """A preset name, or a path to a config JSON file (as the Build page downloads it)."""
    if spec.endswith(".json"):
        try:
            with open(spec, encoding="utf-8") as f:
                return ResNetConfig.from_json(f.read())
        except OSError as exc:
            raise ConfigError(f"config file: cannot read {spec} ({exc.strerror})") from None
    return get_preset(spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resnet_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("presets", help="list the presets")
    summary = sub.add_parser("summary", help="per-layer table of a preset or config JSON")
    summary.add_argument("model", help="preset name (e.g. resnet50) or path to a config .json")
    summary.add_argument("--size", type=int, default=None, help="input height and width (default: 32 or 224)")
    summary.add_argument("--layers", action="store_true", help="print every layer, not just the totals")
    sub.add_parser("demos", help="the lecture demos and how long each takes on this machine")
    args = parser.parse_args(argv)

    if args.command == "demos":
        return _print_demos()
    if args.command == "presets":
        for name in list_presets():
            print(f"{name:18s} {preset_note(name)}")
        return 0
    try:
        cfg = _load_config(args.model)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    size = args.size or default_image_size(cfg)
    result = summarize(build_model(cfg), (cfg.in_channels, size, size))
    if args.layers:
        print(f"{'layer':32s} {'type':14s} {'output':>16s} {'params':>12s} {'MACs':>14s}")
        for r in result.rows:
            shape = "x".join(map(str, r.output_shape))
            print(f"{r.path:32s} {r.type:14s} {shape:>16s} {r.params:>12,} {r.macs:>14,}")
    print(f"parameters: {result.total_params:,} ({format_count(result.total_params)})")
    print(f"MACs at {size}x{size}: {result.total_macs:,} ({format_count(result.total_macs)})")
    return 0


def _print_demos() -> int:
    from .device import describe_device
    from .estimates import DEMO_KEYS, estimate_seconds, format_duration  # lazy: it measures the device

    print(f"device: {describe_device().label}")
    for key in DEMO_KEYS:
        extra = ""
        if key == "gradcam":
            extra = f" (plus {format_duration(estimate_seconds('gradcam', model_ready=False))} to train its model once)"
        print(f"{key}: {format_duration(estimate_seconds(key))}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
