"""`rnnlab env`: what this machine offers rnnlab — versions, devices, and which backend serves what, and why."""

from __future__ import annotations

import argparse
import platform

import torch

from .. import __version__
from ..kernels import backend_report
from ..train.threads import SMALL_WORK, choose_threads

__all__ = ["add_parser"]

EXAMPLES = """
examples:
  rnnlab env                 # versions, threads, and the backend auto picks for each kind of layer on the CPU
  rnnlab env --device cuda   # the same for the GPU
"""


def add_parser(commands) -> None:
    p = commands.add_parser(
        "env", help="versions, devices and which backend runs what here", epilog=EXAMPLES,
        description="Print rnnlab's and torch's versions, the devices torch sees, and for each kind of layer "
                    "the backend that backend='auto' picks and why the others can or cannot serve it.",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(f"rnnlab {__version__}, torch {torch.__version__}, Python {platform.python_version()} on {platform.platform()}")
    print(f"CPU threads {torch.get_num_threads()} (torch's default), oneDNN {torch.backends.mkldnn.is_available()}, "
          f"MKL {torch.backends.mkl.is_available()}")
    # what `rnnlab train` would choose now, before knowing the model (each run also weighs its work per step)
    print(f"rnnlab train's default: {choose_threads().line()}; a run whose time step has under "
          f"{SMALL_WORK / 1e6:g} M multiply-adds takes 1; --threads overrides")
    if torch.cuda.is_available():
        print(f"CUDA {torch.version.cuda}: {', '.join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))}"
              f"; cuDNN {torch.backends.cudnn.version()}")
    else:
        print("CUDA: not available")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device here; use --device cpu")
    print()
    print(backend_report(args.device))
    return 0
