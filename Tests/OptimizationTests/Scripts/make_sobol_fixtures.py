# Prints the reference values used by Tests/OptimizationTests/SobolTests.swift and NormalQuantileTests.swift.
# Usage (throwaway venv): python -m venv /tmp/v && /tmp/v/bin/pip install numpy scipy &&
#   /tmp/v/bin/python Tests/OptimizationTests/Scripts/make_sobol_fixtures.py
import numpy as np, scipy
from scipy.stats import qmc
from scipy.special import ndtri
print("// scipy", scipy.__version__)
e = qmc.Sobol(d=4, scramble=False)
print("first 8 points, d=4:", [[float(v) for v in row] for row in e.random(8)])
coords = [0, 1, 2, 99, 499, 1000, 1110]
e = qmc.Sobol(d=1111, scramble=False)
pts = e.random(32)
print("d=1111, points 0..<32, coordinates", coords, ":", [[float(pts[i, c]) for c in coords] for i in range(32)])
e = qmc.Sobol(d=1111, scramble=False)
e.fast_forward(1000)
pts = e.random(3)
print("d=1111, points 1000..<1003, coordinates", coords, ":", [[float(pts[i, c]) for c in coords] for i in range(3)])
ps = [1e-300, 1e-20, 1e-10, 0.001, 0.02425, 0.024, 0.1, 0.3, 0.5, 0.7, 0.975, 0.999, 1 - 1e-10]
print("ndtri:", [(p, repr(float(ndtri(p)))) for p in ps])
e = qmc.Sobol(d=1111, scramble=False)
e.fast_forward(1_000_003)
pts = e.random(1)
print("d=1111, point 1_000_003, coordinates", coords, ":", [repr(float(pts[0, c])) for c in coords])
