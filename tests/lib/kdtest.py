"""Shared by the Python test scripts (tests/fusion, tests/kernels, tests/inplace,
tests/winograd): counted checks, random float32 tensors, and the literals and
tensor types of the ONNX textual syntax the scripts write their models in.

A script puts this folder on its path:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
"""
import sys

import numpy as np


class Checks:
    """check(name, ok, msg): prints 'ok   name' or 'FAIL name: msg' and counts;
    finish() prints the totals and exits 1 if any check failed."""

    def __init__(self):
        self.passes = self.fails = 0

    def __call__(self, name, ok, msg=""):
        if ok:
            self.passes += 1
            print("ok   %s" % name)
        else:
            self.fails += 1
            print("FAIL %s: %s" % (name, msg))

    def finish(self):
        print("%d passed, %d failed" % (self.passes, self.fails))
        sys.exit(1 if self.fails else 0)


def randn(rng, shape, scale=1.0):
    """float32 normal samples from numpy Generator rng, times scale"""
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def lit(a):
    """a tensor's elements as a textual-syntax literal (float64 with 17 digits)"""
    fmt = "%.17g" if np.asarray(a).dtype == np.float64 else "%.9g"
    return "{" + ", ".join(fmt % v for v in np.asarray(a).ravel()) + "}"


def tstr(a, dt="float"):
    """the textual-syntax type of array a: float[2,3]"""
    return "%s[%s]" % (dt, ",".join(str(d) for d in a.shape))


def t64(a):
    """a as a float64 torch tensor (the independent reference computes in double)"""
    import torch
    return torch.from_numpy(np.asarray(a, dtype=np.float64))
