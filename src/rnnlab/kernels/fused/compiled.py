"""The fused LSTM's and GRU's time loops in C, compiled on first use with the system's C compiler and cached.

Why: on a CPU a framework op costs ~5 us of dispatch whatever its size, and the fused LSTM issues eight of
them per forward step and five per backward step; at small batches (BENCHMARKS.md S3, S4) that overhead,
not arithmetic, set its speed (2.5x torch.nn.LSTM). The loops in loop_lstm*.c do each step as one BLAS
call (torch's own MKL gemm, passed in as a function pointer, so nothing links against torch at build time
and `pip install rnnlab` stays pure Python) and one vectorised pass over the gates.

Where it runs: CPU tensors, float32/float64, every LSTM and GRU variant and combination (peephole,
coupled, layer norm, projection), when a C compiler and torch's exported `sgemm_`/`dgemm_` are found. Anywhere
else — no compiler, another BLAS, CUDA — lstm.py's / gru.py's Python loop of torch ops runs
instead; both are tested equal to the reference backend. `status()` says which and why;
RNNLAB_COMPILED=0 turns the compiled loops off.

Cache: $RNNLAB_CACHE (default ~/.cache/rnnlab)/kernels/<hash>.so, the hash covering the source, the
compiler command and the machine; compiled into a temporary file and renamed into place, so concurrent
first uses and interrupted builds leave no broken library. A build takes about a second.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch
from torch import Tensor

from ...cells.config import LN_EPS

__all__ = ["available", "disabled", "gru_backward", "gru_forward", "lstm_backward", "lstm_forward", "status"]

_HERE = Path(__file__).parent
_TYPES = {torch.float32: ("float", "f32", "expf", "dtanhf"), torch.float64: ("double", "f64", "exp", "tanh")}
_lock = threading.Lock()
_state: dict = {}  # "lib", "gemm" {dtype: fn pointer}, "reason"
_off = 0  # > 0 inside `disabled()`


def _source() -> str:
    head = (_HERE / "loop_lstm.c").read_text()
    body = (_HERE / "loop_lstm_body.c").read_text() + (_HERE / "loop_gru_body.c").read_text()
    parts = [head]
    for real, sfx, exp, tanh in _TYPES.values():
        parts.append(body.replace("REAL", real).replace("SFX", sfx).replace("EXP", exp).replace("TANH", tanh))
    return "\n".join(parts)


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cache_dir() -> Path:
    root = os.environ.get("RNNLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "rnnlab")
    return Path(root) / "kernels"


def _machine() -> str:
    """What -march=native depends on: a library built for one CPU must not be loaded on another that
    shares the cache (a home folder on a cluster), so the CPU's feature flags are part of the cache key."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return "\0".join([platform.machine(), platform.processor(), flags])


def _build(src: str, cc: str) -> tuple[Path | None, str]:
    """Compile `src` into a cached shared library; (path, "") or (None, why not)."""
    attempts = [
        ["-O3", "-march=native", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared"],
        ["-O3", "-fPIC", "-shared", "-DRNNLAB_NO_MVEC"],  # no libmvec (not glibc) or an older compiler
    ]
    libs = [["-lmvec", "-lm"], ["-lm"]]
    why = ""
    for flags, link in zip(attempts, libs):
        key = hashlib.sha256("\0".join([src, cc, *flags, *link, _machine()]).encode())
        target = _cache_dir() / f"lstm-{key.hexdigest()[:16]}.so"
        if target.exists():
            return target, ""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                c_file, so_tmp = Path(tmp) / "loop_lstm.c", Path(tmp) / "out.so"
                c_file.write_text(src)
                done = subprocess.run([cc, *flags, str(c_file), "-o", str(so_tmp), *link],
                                      capture_output=True, text=True, timeout=120)
                if done.returncode != 0:
                    why = f"{Path(cc).name} failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
                    continue
                os.replace(so_tmp, target)  # atomic: a reader sees no library or a whole one
            return target, ""
        except (OSError, subprocess.SubprocessError) as e:
            why = f"could not build in {target.parent}: {e}"
    return None, why


def _gemms() -> tuple[dict, str]:
    """torch's own BLAS gemm (sgemm_/dgemm_ exported by libtorch_cpu with MKL builds)."""
    libdir = Path(torch.__file__).parent / "lib"
    names = {"linux": "libtorch_cpu.so", "darwin": "libtorch_cpu.dylib"}
    path = libdir / names.get(sys.platform, "")
    if not path.is_file():
        return {}, f"torch's CPU library not found at {path}"
    try:
        lib = ctypes.CDLL(str(path))
        return {torch.float32: ctypes.cast(lib.sgemm_, ctypes.c_void_p).value,
                torch.float64: ctypes.cast(lib.dgemm_, ctypes.c_void_p).value}, ""
    except (OSError, AttributeError):
        return {}, "this torch build exports no Fortran BLAS gemm (sgemm_/dgemm_)"


def _load() -> dict:
    with _lock:
        if _state:
            return _state
        if os.environ.get("RNNLAB_COMPILED", "1") == "0":
            _state.update(lib=None, reason="turned off by RNNLAB_COMPILED=0")
            return _state
        gemm, why = _gemms()
        cc = _compiler() if gemm else None
        if gemm and cc is None:
            why = "no C compiler found (set CC, or install gcc/clang)"
        path = None
        if cc is not None:
            path, why = _build(_source(), cc)
        lib = None
        if path is not None:
            try:
                lib = ctypes.CDLL(str(path))
                for sfx in ("f32", "f64"):
                    for fn in ("lstm_forward", "lstm_backward", "lstm_ln_forward", "lstm_ln_backward",
                               "gru_forward", "gru_backward"):
                        getattr(lib, f"{fn}_{sfx}").restype = None
            except OSError as e:
                lib, why = None, f"could not load {path}: {e}"
        _state.update(lib=lib, gemm=gemm, reason=why if lib is None else f"built as {path}")
        return _state


def status() -> tuple[bool, str]:
    """(whether the compiled LSTM loops are in use, why / which library)."""
    s = _load()
    return s["lib"] is not None, s["reason"]


def available(x: Tensor, cfg) -> bool:
    """Whether the compiled loops serve this layer-direction (else lstm.py's loop of torch ops runs)."""
    if _off or x.device.type != "cpu" or x.dtype not in _TYPES:
        return False
    return _load()["lib"] is not None


@contextlib.contextmanager
def disabled():
    """Within this block the fused LSTM runs its Python loop of torch ops (the tests compare both paths)."""
    global _off
    _off += 1
    try:
        yield
    finally:
        _off -= 1


def _ptr(t: Tensor | None):
    if t is None:
        return None
    if not t.is_contiguous():  # the C loops index raw memory: a strided view would be read wrongly
        raise RuntimeError(f"rnnlab compiled loop: internal buffer of shape {tuple(t.shape)} is not contiguous")
    return ctypes.c_void_p(t.data_ptr())


def _bs(bs, T: int, B: int):
    return (ctypes.c_int * T)(*(bs if bs is not None else [B] * T))


_WEIGHTS = ("weight_hh", "weight_hr", "weight_ci", "weight_cf", "weight_co")
_LN_FWD = ("ln_weight_hh", "bias_hh", "ln_weight_c", "ln_bias_c")
_LN_BWD = ("ln_weight_hh", "ln_weight_c", "ln_bias_c")


def _weights(p: dict, names) -> list[Tensor | None]:
    return [p[n].contiguous() if n in p else None for n in names]


def lstm_forward(Z: Tensor, Rr: Tensor | None, Hs: Tensor, Cs: Tensor, M: Tensor | None, p: dict, cfg, bs) -> None:
    """Run the forward loop in place (see loop_lstm*.c): Z becomes the activations, Hs/Cs[1:] the states,
    Rr (layer norm only) the recurrent products before their normalisation."""
    s = _load()
    T, B, _ = Z.shape
    sfx = _TYPES[Z.dtype][1]
    head = (T, B, cfg.hidden_size, cfg.state_size, int(cfg.coupled), int(cfg.peephole), _bs(bs, T, B))
    gemm = ctypes.c_void_p(s["gemm"][Z.dtype])
    w = _weights(p, _WEIGHTS)
    if cfg.layer_norm:
        ln = _weights(p, _LN_FWD)
        getattr(s["lib"], f"lstm_ln_forward_{sfx}")(*head, *map(_ptr, (Z, Rr, Hs, Cs, M, *w, *ln)),
                                          ctypes.c_double(LN_EPS), gemm)
    else:
        getattr(s["lib"], f"lstm_forward_{sfx}")(*head, *map(_ptr, (Z, Hs, Cs, M, *w)), gemm)


def lstm_backward(Z: Tensor, Rr: Tensor | None, Cs: Tensor, DH: Tensor, DM: Tensor | None, dZ: Tensor,
                  dR: Tensor | None, DC: Tensor, dh0: Tensor | None, p: dict, cfg, bs) -> None:
    """Run the backward loop in place: dZ, dR (layer norm), DH (recurrent parts added), DC (becomes dc0), dh0."""
    s = _load()
    T, B, _ = Z.shape
    sfx = _TYPES[Z.dtype][1]
    head = (T, B, cfg.hidden_size, cfg.state_size, int(cfg.coupled), int(cfg.peephole), _bs(bs, T, B))
    gemm = ctypes.c_void_p(s["gemm"][Z.dtype])
    w = _weights(p, _WEIGHTS)
    if cfg.layer_norm:
        ln = _weights(p, _LN_BWD)
        getattr(s["lib"], f"lstm_ln_backward_{sfx}")(*head, *map(_ptr, (Z, Rr, Cs, DH, DM, dZ, dR, DC, dh0, *w, *ln)),
                                           ctypes.c_double(LN_EPS), gemm)
    else:
        getattr(s["lib"], f"lstm_backward_{sfx}")(*head, *map(_ptr, (Z, Cs, DH, DM, dZ, DC, dh0, *w)), gemm)


def gru_forward(A: Tensor, Z: Tensor, Bh: Tensor, Hs: Tensor, Rr: Tensor | None, p: dict, cfg, bs) -> None:
    """Run the GRU's forward loop (loop_gru_body.c): Z the activations r|z|n, Bh the recurrent parts, Hs[1:]."""
    s = _load()
    T, B, _ = Z.shape
    sfx = _TYPES[Z.dtype][1]
    w = _weights(p, ("weight_hh", "bias_hh", "ln_weight_hh"))
    getattr(s["lib"], f"gru_forward_{sfx}")(T, B, cfg.hidden_size, _bs(bs, T, B), *map(_ptr, (A, Z, Bh, Hs, Rr, *w)),
                                            ctypes.c_double(LN_EPS), ctypes.c_void_p(s["gemm"][Z.dtype]))


def gru_backward(Z: Tensor, Bh: Tensor, Hs: Tensor, Rr: Tensor | None, DH: Tensor, dA: Tensor, dBh: Tensor,
                 dR: Tensor | None, dh0: Tensor | None, p: dict, cfg, bs) -> None:
    """Run the GRU's backward loop: dA, dBh, dR (layer norm), DH (recurrent parts added), dh0 (zero on entry)."""
    s = _load()
    T, B, _ = Z.shape
    sfx = _TYPES[Z.dtype][1]
    w = _weights(p, ("weight_hh", "ln_weight_hh"))
    getattr(s["lib"], f"gru_backward_{sfx}")(T, B, cfg.hidden_size, _bs(bs, T, B),
                                             *map(_ptr, (Z, Bh, Hs, Rr, DH, dA, dBh, dR, dh0, *w)),
                                             ctypes.c_double(LN_EPS), ctypes.c_void_p(s["gemm"][Z.dtype]))
