# Maximal hypervolume of BraninCurrin (BoTorch convention: both objectives minimized, reference (18, 6)).
# ε-constraint trace of the true front: for t on a grid of Currin levels, g(t) = min Branin s.t. Currin ≤ t
# (SLSQP from 49 starts); HV = ∫_{c_min}^{6} (18 − g(t))₊ dt by the trapezoid rule on n intervals, then
# Richardson extrapolation of n and 2n (the error falls like 1/n²).
# Usage (throwaway venv with numpy+scipy): python branin_currin_max_hv.py   (about 10 minutes)
# Result with scipy 1.17.1: n = 200, 400, 800 → 59.406225, 59.406516, 59.406588; extrapolated 59.40661.
# BoTorch's BraninCurrin._max_hv is 59.36011874867746, below hypervolumes that feasible points reach.
import math
import numpy as np
from scipy.optimize import minimize

def branin(u):
    x0, x1 = 15 * u[0] - 5, 15 * u[1]
    return (x1 - 5.1 / (4 * math.pi**2) * x0**2 + 5 / math.pi * x0 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x0) + 10

def currin(u):
    factor = 1 - math.exp(-1 / (2 * u[1])) if u[1] > 0 else 1.0
    x = u[0]
    return factor * (2300 * x**3 + 1900 * x**2 + 2092 * x + 60) / (100 * x**3 + 500 * x**2 + 4 * x + 20)

starts = [np.array([a, b]) for a in np.linspace(0, 1, 7) for b in np.linspace(0, 1, 7)]
bounds = [(0, 1), (0, 1)]

def min_branin_with_currin_at_most(c):
    best = math.inf
    for s in starts:
        r = minimize(branin, s, method="SLSQP", bounds=bounds,
                     constraints=[{"type": "ineq", "fun": lambda u: c - currin(u)}],
                     options={"ftol": 1e-14, "maxiter": 500})
        if r.success and currin(r.x) <= c + 1e-9:
            best = min(best, r.fun)
    return best

c_min = min(minimize(currin, s, method="L-BFGS-B", bounds=bounds).fun for s in starts)
estimates = []
for n in [200, 400, 800]:
    cs = np.linspace(c_min, 6, n + 1)
    heights = np.array([max(18 - min_branin_with_currin_at_most(c), 0) for c in cs])
    estimates.append(float(np.sum((heights[1:] + heights[:-1]) / 2 * np.diff(cs))))
    print(n, repr(estimates[-1]), flush=True)
print("Richardson:", repr(estimates[-1] + (estimates[-1] - estimates[-2]) / 3))
