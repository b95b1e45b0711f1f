"""Hadamard matrices and seeded signs, as DESIGN.md specifies them
(implemented independently of the C++ runtime, for the reference).

- Order 2^k: Sylvester, H[i][j] = (-1)^popcount(i & j).
- Order m * 2^k with m a Paley order: H_m (x) H_(2^k), the smallest such m.
  Paley I (q prime = 3 mod 4): H = I + [[0, 1^T], [-1, Q]], order q + 1.
  Paley II (q prime = 1 mod 4): C = [[0, 1^T], [1, Q]], 0 -> [[1,-1],[-1,-1]],
  +-1 -> +-[[1,1],[1,-1]], order 2(q + 1). Q[a][b] = chi(a - b) (Jacobsthal).
  (Only prime fields here; the runtime also covers prime powers.)
- Signs from a seed: s_i = +1 if splitmix64(seed, i) has its top bit clear,
  else -1, where splitmix64(seed, i) is the (i+1)-th output of SplitMix64
  started at state `seed`.
"""

import numpy as np

MASK = (1 << 64) - 1


def splitmix64_stream(seed, n):
    state = seed & MASK
    out = []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return out


def seeded_signs(seed, n):
    return np.array([-1.0 if (z >> 63) else 1.0 for z in splitmix64_stream(seed, n)])


def is_prime(q):
    return q >= 2 and all(q % d for d in range(2, int(q ** 0.5) + 1))


def paley(m):
    for q, kind in ((m - 1, 1), (m // 2 - 1, 2)):
        if kind == 2 and m % 2:
            continue
        if not is_prime(q) or q % 4 != (3 if kind == 1 else 1):
            continue
        squares = {(x * x) % q for x in range(1, q)}
        chi = lambda a: 0 if a % q == 0 else (1 if a % q in squares else -1)
        Q = np.array([[chi(a - b) for b in range(q)] for a in range(q)], dtype=np.float64)
        if kind == 1:
            S = np.zeros((q + 1, q + 1))
            S[0, 1:], S[1:, 0], S[1:, 1:] = 1, -1, Q
            return np.eye(q + 1) + S
        C = np.zeros((q + 1, q + 1))
        C[0, 1:], C[1:, 0], C[1:, 1:] = 1, 1, Q
        zero = np.array([[1, -1], [-1, -1]], dtype=np.float64)
        one = np.array([[1, 1], [1, -1]], dtype=np.float64)
        return np.block([[zero if c == 0 else c * one for c in row] for row in C])
    return None


def sylvester(n):
    i = np.arange(n)
    bits = np.bitwise_and(i[:, None], i[None, :])
    pop = np.zeros_like(bits)
    while bits.any():
        pop += bits & 1
        bits >>= 1
    return np.where(pop % 2, -1.0, 1.0)


def hadamard(n):
    """The +-1 Hadamard matrix of order n (float64), or None."""
    twos = 0
    while n % (2 ** (twos + 1)) == 0:
        twos += 1
    for k in range(twos, -1, -1):
        m = n // 2 ** k
        base = np.ones((1, 1)) if m == 1 else paley(m)
        if base is not None:
            return np.kron(base, sylvester(2 ** k))
    return None


def has_hadamard(n):
    return hadamard(n) is not None


def orthonormal_hadamard(n):
    h = hadamard(n)
    if h is None:
        raise ValueError("no Hadamard matrix of order %d" % n)
    return h / np.sqrt(n)
