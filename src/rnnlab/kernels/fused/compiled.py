"""The fused LSTM's, GRU's and Elman RNN's time loops in C, compiled on first use with the system's C compiler and cached.

Why: on a CPU a framework op costs ~5 us of dispatch whatever its size, and the fused LSTM issues eight of
them per forward step and five per backward step; at small batches (benchmarks/layers.py's S3, S4) that
overhead, not arithmetic, set its speed. A BLAS call per step was the next limit: on this project's AMD machine
torch's matmul (MKL's sgemm, which re-packs W_hh and sets up its threads on every call) reached 45-110
GFLOP/s on the recurrence's skinny per-step products (B x H times H x 4H), where a standalone prototype
of the register-blocked micro-kernel in loop_gemm_body.c, with W_hh packed once, reached 175-210. So the
loops pack W_hh once per call and run that kernel, with OpenMP threads (torch's runtime) sharing each
step by batch rows (each its own sequences, no barrier) or, with few rows, by hidden units (each a slice of
every gate for both the product and the pointwise work, a barrier per step; three with layer norm). The
same kernel serves the layer's time-parallel products where it measured faster (`gemm`; benchmarks/gemm.py).
Nothing links against torch at build time, so `pip install rnnlab` stays pure Python.

Where it runs: CPU tensors, float32/float64, every LSTM and GRU variant and combination (peephole,
coupled, layer norm, projection), when a C compiler is found. Anywhere else (no compiler, CUDA) lstm.py's
/ gru.py's Python loop of torch ops runs instead; both are tested equal to the reference backend.
`status()` says which and why; RNNLAB_COMPILED=0 turns the compiled loops off; RNNLAB_ISA=avx2 (or avx512,
portable) builds them for another instruction set than the machine's own (`ISAS`, below). Threads: torch's
`torch.get_num_threads()`, read at every call; a compiler without OpenMP gives a one-thread build.

Cache: $RNNLAB_CACHE (default ~/.cache/rnnlab)/kernels/<hash>.so, the hash covering the source, the
compiler command and the machine; compiled into a temporary file and renamed into place, so concurrent
first uses and interrupted builds leave no broken library. A build takes a few seconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch
from torch import Tensor

from ...cells.config import LN_EPS

__all__ = ["available", "disabled", "gemm", "gemm_at", "gru_backward", "gru_forward", "lstm_backward", "lstm_forward", "status"]

_HERE = Path(__file__).parent
_TYPES = {torch.float32: ("float", "f32", "fsigmoid", "ftanh"), torch.float64: ("double", "f64", "dsigmoid", "tanh")}
_lock = threading.Lock()
_state: dict = {}  # "lib", "reason", "openmp"
_off = 0  # > 0 inside `disabled()`


def _source() -> str:
    head = (_HERE / "loops.c").read_text()
    body = "".join((_HERE / f"loop_{part}_body.c").read_text() for part in ("gemm", "lstm", "gru", "rnn", "scan"))
    parts = [head]
    for real, sfx, sigmoid, tanh in _TYPES.values():
        parts.append(body.replace("REAL", real).replace("SFX", sfx).replace("SIGMOID", sigmoid).replace("TANH", tanh))
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


# RNNLAB_ISA: which instruction set the loops are built for. "native" (default): the machine's own
# (-march=native); the others force a build so that every path rnnlab ships can be tested and measured on one
# machine (an AVX-512 machine runs all three): "avx512" (x86-64-v4), "avx2" (x86-64-v3: AVX2 + FMA, 16 vector
# registers: most laptops and many cloud CPUs), "portable" (x86-64: SSE2 only). A forced ISA the CPU lacks is
# refused (the loops then run as torch ops), never run.
ISAS = {"native": "-march=native", "avx512": "-march=x86-64-v4", "avx2": "-march=x86-64-v3",
        "portable": "-march=x86-64"}
_CPU_NEEDS = {"avx512": ("avx512f", "avx512bw", "avx512vl", "avx512dq"), "avx2": ("avx2", "fma")}


def _fast(march: str) -> list[str]:
    return ["-O3", march, "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared"]


def builds(isa: str = "native") -> list[tuple[list[str], list[str]]]:
    """(compiler flags, link flags) to try in order for `isa` (a key of ISAS)."""
    out = [([*_fast(ISAS[isa]), "-fopenmp"], ["-lmvec", "-lm"]),
           ([*_fast(ISAS[isa]), "-fopenmp-simd"], ["-lmvec", "-lm"])]  # no OpenMP runtime: one thread
    if isa == "native":  # last resort: no libmvec, no -march, no OpenMP
        out.append((["-O3", "-fPIC", "-shared", "-DRNNLAB_NO_MVEC"], ["-lm"]))
    return out


BUILDS = builds()


def _build(src: str, cc: str, builds=BUILDS) -> tuple[Path | None, str]:
    """Compile `src` into a cached shared library; (path, "") or (None, why not)."""
    why = ""
    for flags, link in builds:
        key = hashlib.sha256("\0".join([src, cc, *flags, *link, _machine()]).encode())
        target = _cache_dir() / f"lstm-{key.hexdigest()[:16]}.so"
        if target.exists():
            return target, ""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                c_file, so_tmp = Path(tmp) / "loops.c", Path(tmp) / "out.so"
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


def _load() -> dict:
    with _lock:
        if _state:
            return _state
        if os.environ.get("RNNLAB_COMPILED", "1") == "0":
            _state.update(lib=None, reason="turned off by RNNLAB_COMPILED=0")
            return _state
        isa, why = _requested_isa()
        if isa is None:
            _state.update(lib=None, reason=why)
            return _state
        cc, why = _compiler(), "no C compiler found (set CC, or install gcc/clang)"
        path = None
        if cc is not None:
            path, why = _build(_source(), cc, builds(isa))
        lib = None
        if path is not None:
            try:
                lib = _open(path)
            except OSError as e:
                lib, why = None, f"could not load {path}: {e}"
        threads = "OpenMP threads" if lib is not None and _uses_openmp(path) else "one thread (no OpenMP)"
        vector = f"{lib.loops_vector_bits()}-bit vectors" if lib is not None else ""
        _state.update(lib=lib, isa=isa, reason=why if lib is None else
                      f"built for {isa} ({vector}; RNNLAB_ISA) as {path}, {threads}")
        return _state


def _requested_isa() -> tuple[str | None, str]:
    """(the ISA RNNLAB_ISA asks for, "") or (None, why it cannot run here)."""
    isa = os.environ.get("RNNLAB_ISA", "native").strip().lower() or "native"
    if isa not in ISAS:
        return None, f"RNNLAB_ISA={isa!r} is not one of {', '.join(ISAS)}; the loops run as torch ops"
    flags = _machine().split("\0")[-1].split()
    missing = [f for f in _CPU_NEEDS.get(isa, ()) if f not in flags]
    if isa != "native" and platform.machine() not in ("x86_64", "AMD64"):
        return None, f"RNNLAB_ISA={isa} is for x86-64 CPUs, not {platform.machine()}; the loops run as torch ops"
    if missing:
        return None, f"RNNLAB_ISA={isa}: this CPU lacks {', '.join(missing)}; the loops run as torch ops"
    return isa, ""


def isa() -> str | None:
    """The instruction set the loaded loops were built for (native / avx512 / avx2 / portable), None if none."""
    s = _load()
    return s.get("isa") if s["lib"] is not None else None


def vector_bits() -> int | None:
    """The vector width the loaded loops were compiled for (512, 256 or 128), None if none are loaded."""
    s = _load()
    return s["lib"].loops_vector_bits() if s["lib"] is not None else None


def _open(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    lib.loops_vector_bits.restype = ctypes.c_int
    for sfx in ("f32", "f64"):
        for fn in ("lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "rnn_forward", "rnn_backward",
                   "gemm", "gemm_at", "linrec", "pack_panels"):
            getattr(lib, f"{fn}_{sfx}").restype = None
        getattr(lib, f"panel_count_{sfx}").restype = ctypes.c_long
    return lib


def _uses_openmp(path: Path) -> bool:
    """Whether the library was built with OpenMP (it then names libgomp/libomp among its dependencies)."""
    data = path.read_bytes()
    return b"GOMP_parallel" in data or b"__kmpc_fork_call" in data


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


def _params(p: dict, names) -> list[Tensor | None]:
    """The named parameters, contiguous (the list keeps any copy alive through the call), None if absent."""
    return [p[n].contiguous() if n in p else None for n in names]


SPLIT = 0  # how the loops' threads share a step: 0 choose (loops.c make_split), 1 by units, 2 by rows (tests)


def _call(name: str, dtype: torch.dtype, *args) -> None:
    getattr(_load()["lib"], f"{name}_{_TYPES[dtype][1]}")(ctypes.c_int(torch.get_num_threads()), *args)


def _loop(name: str, dtype: torch.dtype, *args) -> None:
    _call(name, dtype, ctypes.c_int(SPLIT), *args)


def _masks(p: dict, names) -> list:
    """The loop regularizers' arguments (loop_gemm_body.c): for "recurrent" its (B, R) mask's pointer or NULL;
    for a zoneout its (T, B, n) indicators' pointer and 0.0, or NULL and the expectation p (evaluation), or
    NULL and 0.0 (off). The list keeps the contiguous copies alive through the call."""
    args = []
    for name in names:
        m = p.get(name)
        if name == "recurrent":
            args.append(m.contiguous() if m is not None else None)
        elif m is None or m.dim() == 0:
            args += [None, ctypes.c_double(float(m) if m is not None else 0.0)]
        else:
            args += [m.contiguous(), ctypes.c_double(0.0)]
    return args


def _arg(v):
    return v if isinstance(v, ctypes.c_double) else _ptr(v)


def lstm_forward(Z: Tensor, Rr: Tensor | None, Hs: Tensor, Cs: Tensor, M: Tensor | None, ST: Tensor | None,
                 p: dict, cfg, bs, keep: bool = True, CT: Tensor | None = None,
                 packed: tuple[Tensor | None, Tensor | None] = (None, None)) -> None:
    """Run the forward loop in place (see loop_lstm_body.c): Z becomes the activations, Hs/Cs[1:] the
    states; with layer norm Rr gets the recurrent products before their normalisation and ST (T, B, 4) their
    and the cell states' row mean and 1/std. keep=False: no backward will run, so Rr, ST and M may be
    one step's scratch ((B, ...) buffers, reused every step). The regularization masks come with `p`
    (recurrent, zone_c, zone_h: common.MASK_NAMES); with zoneout of c, CT (T, B, H) gets c~_t for backward.
    packed: W_hh's and W_hr's panels from pack_recurrent (several calls over one sequence's chunks), else
    packed inside."""
    T, B, _ = Z.shape
    head = (T, B, cfg.hidden_size, cfg.state_size, int(cfg.coupled), int(cfg.peephole), _bs(bs, T, B), int(keep))
    w = _params(p, ("weight_hh", "weight_hr", "weight_ci", "weight_cf", "weight_co", "ln_weight_hh", "bias_hh",
                    "ln_weight_c", "ln_bias_c"))
    if not cfg.layer_norm:
        w[5:] = [None] * 4  # without layer norm b_hh is folded into Z
    regs = _masks(p, ("recurrent", "zone_c", "zone_h"))
    _loop("lstm_forward", Z.dtype, *head, *map(_ptr, (Z, Rr, Hs, Cs, M, ST, *w)), ctypes.c_double(LN_EPS),
          *map(_arg, regs), _ptr(CT), *map(_ptr, packed))


def lstm_backward(Z: Tensor, Rr: Tensor | None, Cs: Tensor, ST: Tensor | None, DH: Tensor, DM: Tensor | None,
                  dZ: Tensor, dR: Tensor | None, DC: Tensor, dh0: Tensor | None, GP: Tensor | None,
                  GL: Tensor | None, p: dict, cfg, bs, CT: Tensor | None = None) -> None:
    """Run the backward loop in place: dZ, dR (layer norm), DH (recurrent parts added; with zoneout of h,
    dL/dh~_t), DC (becomes dc0), dh0 (zero on entry); GP (3, H) float64 the peephole weights' gradients,
    GL (G*H + 2H) float64 the layer-norm gains'. Masks with `p`, CT as forward filled it."""
    T, B, _ = Z.shape
    head = (T, B, cfg.hidden_size, cfg.state_size, int(cfg.coupled), int(cfg.peephole), _bs(bs, T, B))
    w = _params(p, ("weight_hh", "weight_hr", "weight_ci", "weight_cf", "weight_co", "ln_weight_hh", "ln_weight_c",
                    "ln_bias_c"))
    regs = _masks(p, ("recurrent", "zone_c", "zone_h"))
    _loop("lstm_backward", Z.dtype, *head, *map(_ptr, (Z, Rr, Cs, ST, DH, DM, dZ, dR, DC, dh0, GP, GL, *w)),
          *map(_arg, regs), _ptr(CT))


def gru_forward(A: Tensor, Z: Tensor, Bh: Tensor, Hs: Tensor, Rr: Tensor | None, ST: Tensor | None, p: dict,
                cfg, bs, keep: bool = True) -> None:
    """Run the GRU's forward loop (loop_gru_body.c): Z the activations r|z|n, Bh the recurrent parts, Hs[1:];
    with layer norm Rr and ST (T, B, 2) as for the LSTM; keep=False: Bh, Rr, ST may be one step's scratch."""
    T, B, _ = Z.shape
    w = _params(p, ("weight_hh", "bias_hh", "ln_weight_hh"))
    regs = _masks(p, ("recurrent", "zone_h"))
    _loop("gru_forward", Z.dtype, T, B, cfg.hidden_size, _bs(bs, T, B), int(keep), *map(_ptr, (A, Z, Bh, Hs, Rr, ST, *w)),
          ctypes.c_double(LN_EPS), *map(_arg, regs))


def gru_backward(Z: Tensor, Bh: Tensor, Hs: Tensor, Rr: Tensor | None, ST: Tensor | None, DH: Tensor, dA: Tensor,
                 dBh: Tensor, dR: Tensor | None, dh0: Tensor | None, GL: Tensor | None, p: dict, cfg, bs) -> None:
    """Run the GRU's backward loop: dA, dBh, dR (layer norm), DH (recurrent parts added), dh0 (zero on entry),
    GL (3H) float64 the recurrent layer-norm gain's gradient."""
    T, B, _ = Z.shape
    w = _params(p, ("weight_hh", "ln_weight_hh"))
    regs = _masks(p, ("recurrent", "zone_h"))
    _loop("gru_backward", Z.dtype, T, B, cfg.hidden_size, _bs(bs, T, B),
          *map(_ptr, (Z, Bh, Hs, Rr, ST, DH, dA, dBh, dR, dh0, GL, *w)), *map(_arg, regs))


def rnn_forward(A: Tensor, Hs: Tensor, HT: Tensor | None, Rr: Tensor | None, ST: Tensor | None, p: dict, cfg, bs,
                keep: bool = True) -> None:
    """Run the Elman RNN's forward loop (loop_rnn_body.c): Hs[1:] from the input part A (both biases in it,
    b_ih only under layer norm); with zoneout in training HT (T, B, H) gets h~_t for backward; layer norm: Rr gets
    h_{t-1} W_hh^T ((T, B, H), or one step's (1, B, H) when keep is False), ST a (B, 2) scratch."""
    T, B, _ = A.shape
    w = _params(p, ("weight_hh", "bias_hh", "ln_weight_hh"))
    if not cfg.layer_norm:
        w[1:] = [None, None]  # without layer norm b_hh is folded into A
    regs = _masks(p, ("recurrent", "zone_h"))
    _loop("rnn_forward", A.dtype, T, B, cfg.hidden_size, int(cfg.family == "rnn_relu"), _bs(bs, T, B), int(keep),
          *map(_ptr, (A, Hs, HT, Rr, ST, *w)), ctypes.c_double(LN_EPS), *map(_arg, regs))


def rnn_backward(Hs: Tensor, HT: Tensor | None, Rr: Tensor | None, ST: Tensor | None, DH: Tensor, dZ: Tensor,
                 dR: Tensor | None, dh0: Tensor | None, GL: Tensor | None, p: dict, cfg, bs) -> None:
    """Run the Elman RNN's backward loop: dZ (dL/dz_t), DH (recurrent parts added), dh0 (zero on entry); layer
    norm: ST (T, B, 2) Rr's rows' mean and 1/std, dR out, GL (H) float64 zero on entry, out: the gain's gradient."""
    T, B, _ = DH.shape
    w = _params(p, ("weight_hh", "ln_weight_hh"))
    regs = _masks(p, ("recurrent", "zone_h"))
    _loop("rnn_backward", DH.dtype, T, B, cfg.hidden_size, int(cfg.family == "rnn_relu"), _bs(bs, T, B),
          *map(_ptr, (Hs, HT, Rr, ST, DH, dZ, dR, dh0, GL, *w)), *map(_arg, regs))


def linear_recurrence(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """y_t = a_t y_{t-1} + b_t over dim 0 of a, b (T, ...) from y_{-1} = h0 (broadcast to a step's shape): the
    minGRU/minLSTM recurrence (kernels/scan.py) as one pass in C (loop_scan_body.c), threads over elements."""
    a, b = a.contiguous(), b.contiguous()
    h = h0.expand(b.shape[1:]).contiguous()
    y = torch.empty_like(b)
    T = b.shape[0]
    _call("linrec", b.dtype, ctypes.c_int(T), ctypes.c_long(h.numel()), _ptr(a), _ptr(b), _ptr(h), _ptr(y))
    return y


def gemm(A: Tensor, W: Tensor, transposed: bool, bias: Tensor | None = None, packed: Tensor | None = None) -> Tensor:
    """A @ W.T (transposed) or A @ W, plus bias, for 2-D A: a layer's time-parallel products (the input
    projection of every step, dx) on the loops' own kernel (gemm in loop_gemm_body.c); common._matmul uses
    it only at the shapes where it measured at least 15 % faster than torch's call (benchmarks/README.md).
    packed: W's panels from pack(W, transposed) (several products with one W), else packed inside."""
    A, W = A.contiguous(), W.contiguous()
    b = bias.contiguous() if bias is not None else None
    M, K = A.shape
    N = W.shape[0] if transposed else W.shape[1]
    C = A.new_empty(M, N)
    _call("gemm", A.dtype, M, N, K, _ptr(A), K, _ptr(W), int(transposed), _ptr(b), _ptr(C), _ptr(packed))
    return C


def _pack(M: Tensor, K: int, G: int, W: int, transposed: bool) -> Tensor:
    sfx = _TYPES[M.dtype][1]
    lib = _load()["lib"]
    P = M.new_empty(getattr(lib, f"panel_count_{sfx}")(K, G, W))
    M = M.contiguous()  # held here: a temporary copy would be freed before the call reads it
    _call("pack_panels", M.dtype, _ptr(M), K, G, W, int(transposed), _ptr(P))
    return P


def pack(W: Tensor, transposed: bool) -> Tensor:
    """gemm's panels of W (what gemm(A, W, transposed) multiplies A by), packed once for several gemm calls."""
    return _pack(W, W.shape[1] if transposed else W.shape[0], 1, W.shape[0] if transposed else W.shape[1],
                 transposed)


def pack_recurrent(p: dict, cfg) -> tuple[Tensor, Tensor | None]:
    """lstm_forward's panels of W_hh (and of W_hr with a projection), packed once for several calls."""
    H, R = cfg.hidden_size, cfg.state_size
    Pw = _pack(p["weight_hh"], R, cfg.num_blocks, H, True)
    return Pw, (_pack(p["weight_hr"], H, 1, R, True) if cfg.proj_size > 0 else None)


def gemm_at(D: Tensor, X: Tensor) -> Tensor:
    """D^T X for 2-D D (K, M) and X (K, N) with K >= 1: a layer's weight gradients over its T*B rows, on the loops'
    own kernel (gemm_at in loop_gemm_body.c); common.weight_grad uses it where it measured faster than torch's."""
    D, X = D.contiguous(), X.contiguous()
    K, M = D.shape
    N = X.shape[1]
    C = D.new_empty(M, N)
    _call("gemm_at", D.dtype, M, N, K, _ptr(D), _ptr(X), _ptr(C))
    return C
