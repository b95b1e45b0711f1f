"""Prints the relative difference max|a - b| / max|a| of two raw float32
files and 'ok' when it is below the bound (argv[3], default 1e-5) and the
sizes match, else 'BAD'."""
import sys

import numpy as np

a = np.fromfile(sys.argv[1], dtype=np.float32)
b = np.fromfile(sys.argv[2], dtype=np.float32)
bound = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
e = float(np.abs(a - b).max() / np.abs(a).max()) if a.shape == b.shape and a.size else float("inf")
print("rel %.1e %s" % (e, "ok" if e < bound else "BAD"))
