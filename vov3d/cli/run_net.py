"""``run_net``: train and/or test a network from YAML configs and ``KEY VALUE`` overrides.

The command line is PySlowFast's, so the VoV3D paper's commands run as written::

    python tools/run_net.py --cfg configs/Kinetics/vov3d/vov3d_L.yaml \\
        DATA.PATH_TO_DATA_DIR /data NUM_GPUS 8 TRAIN.BATCH_SIZE 64

Overrides may also follow ``--opts``. The same entry point is installed as ``vov3d-run``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from vov3d.cli.args import add_overrides, parse_with_overrides
from vov3d.config import CfgNode, ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_net.py",
        description="Train and test X3D / VoV3D video classifiers (TRAIN.ENABLE, TEST.ENABLE).",
        epilog="Overrides: any config key and value, e.g. NUM_GPUS 8 TRAIN.BATCH_SIZE 64, "
        "after the config files or after --opts.",
    )
    parser.add_argument(
        "--cfg",
        dest="cfg_files",
        nargs="+",
        required=True,
        metavar="FILE",
        help="YAML config file(s), merged in order (each may inherit with _BASE_)",
    )
    parser.add_argument("--shard_id", type=int, default=None, help="this machine's index (sets SHARD_ID)")
    parser.add_argument("--num_shards", type=int, default=None, help="number of machines (sets NUM_SHARDS)")
    parser.add_argument(
        "--init_method",
        default=None,
        help="torch.distributed rendezvous of multi-machine jobs, e.g. tcp://host:port "
        "(default: a free port here, or MASTER_ADDR / the first SLURM node under a launcher)",
    )
    add_overrides(parser)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line; overrides may follow the config files or ``--opts``."""
    return parse_with_overrides(build_parser(), argv, after="cfg_files")


def setup_cfg(args: argparse.Namespace) -> CfgNode:
    """Load, override, validate and freeze the config described by ``args``."""
    opts = list(args.opts)
    if args.num_shards is not None:
        opts += ["NUM_SHARDS", str(args.num_shards)]
    if args.shard_id is not None:
        opts += ["SHARD_ID", str(args.shard_id)]
    return load_config(args.cfg_files, opts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        cfg = setup_cfg(args)
    except ConfigError as e:
        print(f"run_net: config error: {e}", file=sys.stderr)
        return 2
    from vov3d.engine.launch import run_jobs

    code = run_jobs(cfg, args.init_method) if cfg.TRAIN.ENABLE or cfg.TEST.ENABLE or not cfg.DEMO.ENABLE else 0
    if code == 0 and cfg.DEMO.ENABLE:  # last, as in PySlowFast's run_net (its demo configs turn the rest off)
        from vov3d.cli.demo import demo

        return demo(cfg, cfg.TEST.CHECKPOINT_FILE_PATH or cfg.OUTPUT_DIR)
    return code


if __name__ == "__main__":
    sys.exit(main())
