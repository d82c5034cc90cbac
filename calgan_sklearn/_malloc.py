"""Keep glibc's malloc from handing memory back to the kernel at every training step.

TensorFlow allocates and frees its tensors at every training step. Under glibc's
default settings, large blocks are served by fresh ``mmap`` calls and freed memory is
returned to the kernel, so every step touches new pages and page-faults on them. On a
2-core CPU without AVX-512 half of the CPU time of training the pretrained model went to
the kernel that way (``benchmarks/RESULTS.md``). :func:`tune_malloc` tells glibc to
serve every block from its heaps and to keep what is freed there, for reuse by the
next step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["tune_malloc"]

# mallopt(3) parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4

#: The settings :func:`tune_malloc` applies, in the order it applies them.
SETTINGS = (
    # No block is served by its own mmap (large blocks come from the heaps too).
    ("M_MMAP_MAX", _M_MMAP_MAX, 0),
    # Free memory at the top of a heap goes back to the kernel only above 1 GiB.
    ("M_TRIM_THRESHOLD", _M_TRIM_THRESHOLD, 1 << 30),
    # Grow a heap by 64 MiB more than asked, so that it grows rarely.
    ("M_TOP_PAD", _M_TOP_PAD, 64 << 20),
)

#: Environment variable that turns :func:`tune_malloc` off (``CALGAN_MALLOC=system``).
ENV = "CALGAN_MALLOC"

_applied = False


def _glibc():
    """glibc's ``mallopt``, or ``None`` where the C library is not glibc."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    if not version or not version.startswith("glibc"):
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        return ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None


def tune_malloc() -> bool:
    """Make training faster on Linux by keeping freed memory in the process.

    Call it once, at the start of a script that trains Keras models on a CPU. It sets
    three of glibc's ``mallopt`` parameters for the whole process (there is no undo):
    no block is served by its own ``mmap``, free memory goes back to the kernel only
    above 1 GiB at the top of a heap, and a heap grows by 64 MiB more than asked. Results do not
    change; only where freed memory waits for its next use.

    On one 2-core CPU without AVX-512 this made training the pretrained model 2.3
    times as fast, at 0.26 GB more peak memory (``benchmarks/RESULTS.md``). Where page
    faults are not what holds training back (a GPU, a CPU where the kernel's share of
    the time is small) there is little to gain. The price is memory the process keeps
    after a peak.

    The ``calgan`` commands that train call it; ``CALGAN_MALLOC=system`` turns it off
    there and here. It does nothing where the C library is not glibc (macOS, Windows,
    Alpine's musl), where another allocator (tcmalloc, jemalloc) is preloaded with
    ``LD_PRELOAD``, or when called a second time.

    Returns
    -------
    applied : bool
        Whether the settings were applied by this call.

    Examples
    --------
    At the top of a training script:

    >>> import calgan_sklearn
    >>> calgan_sklearn.tune_malloc()  # doctest: +SKIP
    True
    """
    global _applied
    if _applied or os.environ.get(ENV, "").strip().lower() == "system":
        return False
    preload = os.environ.get("LD_PRELOAD", "")
    if any(lib in preload for lib in ("tcmalloc", "jemalloc", "mimalloc")):
        return False
    mallopt = _glibc()
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    for name, param, value in SETTINGS:
        if mallopt(param, value) != 1:
            raise RuntimeError(f"glibc's mallopt refused {name}={value}")
    _applied = True
    return True
