#!/usr/bin/env python3
"""Pseudo-likelihood on digits8x8, order 2, T = 1: boundstate vs scikit-learn.

Setup (git-ignored venv at the repo root):
    python3 -m venv .venv && .venv/bin/pip install scikit-learn numpy
    cargo bench --bench training --no-run          # builds target/release/deps/training-*
    .venv/bin/python bench/training_peers.py [--reps 5]

Contenders run in turn (A B A B ...), median and best reported, ratio from the same run.
- boundstate: all 64 conditional likelihoods (Newton per site, rayon over sites); the bench binary
  is run once per repetition and reports its own wall-clock for the fit (data loading excluded).
- sklearn: LogisticRegression (lbfgs, default tol) per spin that is not constant (54 of 64;
  sklearn refuses a single class), features [1, σ_b for b ≠ a, b not constant] with
  fit_intercept=False so the penalty covers the field as in boundstate (which leaves the
  unidentifiable couplings to constant spins out). boundstate minimises per site
  (1/M) Σ ln(1 + e^{−2 y θ·x}) + (λ/2)|θ|², sklearn ½|β|² + C Σ ln(1 + e^{−y β·x}); with β = 2θ
  these agree for C = 4 / (λ M).
Accuracy: both solutions are scored with the same objective (numpy); max |β_sklearn − 2θ| too.
"""
import argparse, glob, json, os, statistics, subprocess, sys, tempfile, time
import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
L2 = 0.01


def load():
    path = "/work/shared/data/digits8x8.txt"
    if not os.path.exists(path):
        path = os.path.join(ROOT, "examples/data/digits8x8.txt")
    rows = [l.strip() for l in open(path) if l.strip() and not l.startswith("#")]
    return 2.0 * np.array([[int(c) for c in r] for r in rows], dtype=np.float64) - 1.0


def others(S, a):
    """The other spins that vary in the data (boundstate leaves constant spins' couplings out:
    a constant column duplicates the field)."""
    return [b for b in range(S.shape[1]) if b != a and not np.all(S[:, b] == S[0, b])]


def features(S, a):
    return np.hstack([np.ones((len(S), 1)), S[:, others(S, a)]])


def objective(S, a, beta):
    """(1/M) Σ ln(1 + e^{−y β·x}) + (λ/8)|β|², features [1, σ_b (b ≠ a, b not constant)]."""
    y = S[:, a]
    X = features(S, a)
    z = y * (X @ beta)
    return np.mean(np.logaddexp(0.0, -z)) + L2 / 8.0 * beta @ beta


def sklearn_fit(S, tol=1e-4, max_iter=100):
    M, n = S.shape
    C = 4.0 / (L2 * M)
    out = {}
    for a in range(n):
        y = S[:, a]
        if np.all(y == y[0]):
            continue
        X = features(S, a)
        m = LogisticRegression(C=C, fit_intercept=False, tol=tol, max_iter=max_iter)
        m.fit(X, y)
        out[a] = m.coef_[0].copy()
    return out


def rust_run(binary, path, tolerance):
    subprocess.run([binary, "--reps", "1", "--json", path, "--tolerance", str(tolerance)], check=True,
                   stderr=subprocess.DEVNULL)
    with open(path) as f:
        return json.load(f)


def rust_beta(S, site):
    """boundstate's θ for a site in the feature layout of `features`, as β = 2θ."""
    a = site["site"]
    cols = {b: 1 + k for k, b in enumerate(others(S, a))}
    beta = np.zeros(1 + len(cols))
    for other, th in zip(site["others"], site["theta"]):
        beta[0 if other < 0 else cols[other]] = 2.0 * th
    return beta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--binary", default=None)
    ap.add_argument("--tolerance", type=float, default=1e-8,
                    help="boundstate's per-site gradient tolerance")
    args = ap.parse_args()
    binary = args.binary or max(
        (p for p in glob.glob(os.path.join(ROOT, "target/release/deps/training-*"))
         if os.access(p, os.X_OK) and not p.endswith(".d")), key=os.path.getmtime)
    S = load()
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "pl.json")
    rust_times, sk_times = [], []
    for _ in range(args.reps):
        res = rust_run(binary, path, args.tolerance)
        rust_times.append(res["times"][0])
        t = time.perf_counter()
        sk = sklearn_fit(S)
        sk_times.append(time.perf_counter() - t)
    sites = {s["site"]: s for s in res["sites"]}
    # Accuracy on the 54 sites both fit; reference: sklearn at tol 1e-10.
    ref = sklearn_fit(S, tol=1e-10, max_iter=10000)
    gap_rust, gap_sk, diff = [], [], []
    for a, beta in sk.items():
        br = rust_beta(S, sites[a])
        f_ref = objective(S, a, ref[a])
        gap_rust.append(objective(S, a, br) - f_ref)
        gap_sk.append(objective(S, a, beta) - f_ref)
        diff.append(np.max(np.abs(br - ref[a])))
    med = lambda v: statistics.median(v)
    print(f"digits8x8 order 2, λ = {L2}, {args.reps} reps alternating, boundstate tolerance {args.tolerance}")
    print(f"boundstate PL (64 sites): median {med(rust_times):.4f} s, best {min(rust_times):.4f} s")
    print(f"sklearn PL ({len(sk)} sites): median {med(sk_times):.4f} s, best {min(sk_times):.4f} s")
    print(f"ratio sklearn/boundstate: median {med(sk_times)/med(rust_times):.1f}x, "
          f"best {min(sk_times)/min(rust_times):.1f}x")
    print(f"objective excess over a tol=1e-10 sklearn reference, max over sites: "
          f"boundstate {max(gap_rust):.2e}, sklearn default {max(gap_sk):.2e}; "
          f"max |β_boundstate − β_ref| = {max(diff):.2e}")


if __name__ == "__main__":
    main()
