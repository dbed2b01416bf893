#!/usr/bin/env python3
"""Peers of the boundstate sampler benchmark (see ../shared/design/benchmarks.md).

  sampler_peers.py instance --n N --seed S --out FILE     write the SK-like instance both sides read
  sampler_peers.py run --instance FILE --workload W [--reads R --sweeps S]
                                                          time the peers; one JSON line per peer
  sampler_peers.py summary FILE                           median / best / ratio table of JSON lines

Instance: J_ij ~ Normal(0, 1/N) symmetric, zero diagonal; h_i ~ Normal(0, 0.1^2);
E = -sum_{i<j} J_ij s_i s_j - sum_i h_i s_i. dimod's sign is opposite, so the peers get -h, -J.
An attempt is one proposed single-spin update: attempts = reads x sweeps x N.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np


def bqm_of(inst):
    import dimod

    n = inst["n"]
    J = np.asarray(inst["J"]).reshape(n, n)
    h = np.asarray(inst["h"])
    # dimod energy = sum h s + sum_{i<j} J s s  ->  pass -h, -J (upper triangle).
    iu = np.triu_indices(n, 1)
    quad = (iu[0], iu[1], -J[iu])
    return dimod.BinaryQuadraticModel.from_numpy_vectors(-h, quad, 0.0, dimod.SPIN)


def cmd_instance(a):
    from dwave.samplers import SimulatedAnnealingSampler

    n = a.n
    rng = np.random.default_rng(a.seed)
    J = np.triu(rng.normal(0.0, 1.0 / np.sqrt(n), size=(n, n)), 1)
    J = J + J.T
    h = rng.normal(0.0, 0.1, size=n)
    starts = rng.choice([-1, 1], size=(100, n))
    inst = {"n": n, "seed": a.seed, "h": h.tolist(), "J": J.ravel().tolist(),
            "starts": starts.tolist()}
    # dwave's default annealing beta range for this problem, read back from its sampleset.
    ss = SimulatedAnnealingSampler().sample(bqm_of(inst), num_reads=1, num_sweeps=10, seed=1)
    inst["beta_range"] = [float(b) for b in ss.info["beta_range"]]
    inst["beta_schedule_type"] = ss.info.get("beta_schedule_type", "geometric")
    with open(a.out, "w") as f:
        json.dump(inst, f)


def emit(side, workload, n, seconds, attempts, best, per_start=0.0, mean=None):
    print(json.dumps({"side": side, "workload": workload, "n": n, "threads": 1,
                      "seconds": seconds, "attempts": attempts, "rate": attempts / seconds,
                      "best_energy": best, "mean_energy": mean, "per_start": per_start}),
          flush=True)


def cmd_run(a):
    from dwave.samplers import SimulatedAnnealingSampler, SteepestDescentSolver

    with open(a.instance) as f:
        inst = json.load(f)
    n = inst["n"]
    bqm = bqm_of(inst)
    attempts = a.reads * a.sweeps * n
    if a.workload in ("metropolis", "gibbs"):
        crit = "Metropolis" if a.workload == "metropolis" else "Gibbs"
        s = SimulatedAnnealingSampler()
        t0 = time.perf_counter()
        ss = s.sample(bqm, beta_range=[1.0, 1.0], beta_schedule_type="linear",
                      num_reads=a.reads, num_sweeps=a.sweeps,
                      proposal_acceptance_criteria=crit, seed=a.seed)
        dt = time.perf_counter() - t0
        emit("dwave-samplers", a.workload, n, dt, attempts, float(ss.first.energy),
             mean=float(np.mean(ss.record.energy)))
    elif a.workload == "anneal":
        s = SimulatedAnnealingSampler()
        t0 = time.perf_counter()
        ss = s.sample(bqm, num_reads=a.reads, num_sweeps=a.sweeps, seed=a.seed)
        dt = time.perf_counter() - t0
        emit("dwave-samplers", "anneal", n, dt, attempts, float(ss.first.energy),
             mean=float(np.mean(ss.record.energy)))
        import openjij as oj

        sa = oj.SASampler()
        lo, hi = inst["beta_range"]
        kw = dict(beta_min=lo, beta_max=hi, num_reads=a.reads, num_sweeps=a.sweeps, seed=a.seed)
        t0 = time.perf_counter()
        try:
            res = sa.sample(bqm, sparse=False, **kw)
        except TypeError:
            res = sa.sample(bqm, **kw)
        dt = time.perf_counter() - t0
        emit("openjij", "anneal", n, dt, attempts, float(res.first.energy),
             mean=float(np.mean(res.record.energy)))
    elif a.workload == "quench":
        starts = np.asarray(inst["starts"], dtype=np.int8)
        s = SteepestDescentSolver()
        t0 = time.perf_counter()
        ss = s.sample(bqm, initial_states=(starts, list(range(n))))
        dt = time.perf_counter() - t0
        flips = int(sum(ss.data_vectors.get("num_steps", [0])))
        emit("dwave-samplers", "quench", n, dt, max(flips, 1), float(ss.first.energy),
             per_start=dt / len(starts))
    else:
        sys.exit(f"unknown workload {a.workload}")


def cmd_summary(a):
    rows = [json.loads(l) for l in open(a.file) if l.startswith("{")]
    keys = sorted({(r["workload"], r["n"]) for r in rows},
                  key=lambda k: (["metropolis", "gibbs", "anneal", "quench"].index(k[0]), k[1]))
    print("fixed T / anneal: M attempts/s per contender (higher is better); quench: us per start "
          "(lower is better); ratio = ours (1 thread) vs peer, medians of this run")
    print(f"{'workload':<11}{'N':>5}  {'contender':<24}{'median':>11}{'best':>11}"
          f"{'ours/peer':>11}  best energy  mean energy")
    for wl, n in keys:
        group = {}
        for r in rows:
            if (r["workload"], r["n"]) == (wl, n):
                name = r["side"] + (f" {r['threads']}t" if r["side"] == "boundstate" else "")
                group.setdefault(name, []).append(r)
        quench = wl == "quench"
        # Quench: time per start (lower is better); others: M attempts/s (higher is better).
        val = (lambda r: r["per_start"] * 1e6) if quench else (lambda r: r["rate"] / 1e6)
        ours = group.get("boundstate 1t")
        ours_med = statistics.median(val(r) for r in ours) if ours else None
        for name, rs in sorted(group.items()):
            vs = [val(r) for r in rs]
            med = statistics.median(vs)
            best = min(vs) if quench else max(vs)
            ratio = ""
            if ours_med and not name.startswith("boundstate"):
                ratio = f"{(med / ours_med) if quench else (ours_med / med):.2f}x"
            unit = "us" if quench else "M/s"
            e = min(r["best_energy"] for r in rs)
            means = [r["mean_energy"] for r in rs if r.get("mean_energy") is not None]
            mean = f"{statistics.mean(means):.3f}" if means else ""
            print(f"{wl:<11}{n:>5}  {name:<24}{med:>8.2f}{unit:>3}{best:>8.2f}{unit:>3}"
                  f"{ratio:>11}  {e:.6f}  {mean}")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("instance")
    i.add_argument("--n", type=int, required=True)
    i.add_argument("--seed", type=int, default=1)
    i.add_argument("--out", required=True)
    r = sub.add_parser("run")
    r.add_argument("--instance", required=True)
    r.add_argument("--workload", required=True)
    r.add_argument("--reads", type=int, default=100)
    r.add_argument("--sweeps", type=int, default=1000)
    r.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("summary")
    s.add_argument("file")
    a = p.parse_args()
    {"instance": cmd_instance, "run": cmd_run, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    main()
