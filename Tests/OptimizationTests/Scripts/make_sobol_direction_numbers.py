# Generates Sources/Optimization/SobolDirectionNumbers.swift from scipy's copy of the
# Joe–Kuo new-joe-kuo-6.21201 direction numbers (scipy/stats/_sobol_direction_numbers.npz).
# Usage (throwaway venv with numpy+scipy, from the repository root):
#   python Tests/OptimizationTests/Scripts/make_sobol_direction_numbers.py 1111 Sources/Optimization/SobolDirectionNumbers.swift
import numpy as np, scipy, os, sys
p = os.path.join(os.path.dirname(scipy.__file__), 'stats', '_sobol_direction_numbers.npz')
d = np.load(p); vinit = d['vinit']; poly = d['poly']
N = int(sys.argv[1]); out = sys.argv[2]
lines = []
for j in range(1, N):
    pj = int(poly[j]); s = pj.bit_length() - 1
    a = (pj >> 1) & ((1 << (s - 1)) - 1)
    ms = [int(v) for v in vinit[j, :s]]
    assert all(v % 2 == 1 and v < (1 << (k + 1)) for k, v in enumerate(ms))
    lines.append(' '.join(str(v) for v in [j + 1, s, a] + ms))
with open(out, 'w') as f:
    f.write(f'''// Joe–Kuo Sobol direction numbers, dimensions 2…{N} (dimension 1 is van der Corput: all m_k = 1).
// Source: S. Joe and F. Y. Kuo, "Constructing Sobol sequences with better two-dimensional projections",
// SIAM J. Sci. Comput. 30 (2008) 2635–2654; file new-joe-kuo-6.21201 (https://web.maths.unsw.edu.au/~fkuo/sobol/).
// Extracted from the copy scipy {scipy.__version__} ships (scipy/stats/_sobol_direction_numbers.npz:
// `poly` = primitive polynomial with leading and trailing 1 bits, `vinit` = initial m_k) by
// Tests/OptimizationTests/Scripts/make_sobol_direction_numbers.py, re-encoded in the file's own line format:
// "d s a m_1 … m_s" — dimension, polynomial degree, interior coefficient bits, initial direction integers.
// Facts, not code: do not edit by hand.

extension SobolSequence {{
    /// Number of dimensions for which direction numbers are carried.
    public static let maximumDimension = {N}

    static let joeKuoDirectionNumbersText = """
''')
    f.write('\n'.join(lines))
    f.write('\n"""\n}\n')
