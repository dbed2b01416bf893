#!/usr/bin/env python3
"""Load benchmark: wrk against the running service while a training job keeps the compute pool
busy. Prints throughput and latency percentiles per endpoint, the peak RSS of the server, and
one-query retrieval latency on an N = 784 order-2 model.

    cargo build --release && python3 bench/load.py [--seconds 10] [--connections 64]

Needs `wrk` (Debian package). Starts its own server on a temporary database.
"""
import argparse, json, urllib.error, os, random, re, shutil, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "boundstate")


def req(base, method, path, body=None, ctype="application/json"):
    data = None
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    r = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        r.add_header("content-type", ctype)
    try:
        with urllib.request.urlopen(r, timeout=600) as resp:
            t = resp.read()
            return resp.status, (json.loads(t) if t else None)
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {path}: {e.code} {e.read().decode()[:500]}")


def wait_job(base, jid):
    while True:
        _, j = req(base, "GET", f"/v1/jobs/{jid}")
        if j["status"] not in ("queued", "running"):
            return j
        time.sleep(0.2)


def wrk(base, path, seconds, conns, body=None):
    script = None
    args = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if body is not None:
        fd, script = tempfile.mkstemp(suffix=".lua")
        with os.fdopen(fd, "w") as f:
            f.write('wrk.method = "POST"\n')
            f.write('wrk.headers["Content-Type"] = "application/json"\n')
            f.write("wrk.body = [[" + json.dumps(body) + "]]\n")
        args += ["-s", script]
    out = subprocess.run(args + [base + path], capture_output=True, text=True).stdout
    if script:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {}
    for p in ("50", "90", "99"):
        m = re.search(rf"\s{p}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        v, u = float(m.group(1)), m.group(2)
        pct[p] = v / 1000 if u == "us" else v * 1000 if u == "s" else v
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return rps, pct, int(non2xx.group(1)) if non2xx else 0, errors.group(1) if errors else ""


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        s = f.read()
    return int(re.search(r"VmHWM:\s+(\d+)", s).group(1)), int(re.search(r"VmRSS:\s+(\d+)", s).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    port = 18000 + random.randint(0, 999)
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, BOUNDSTATE_BIND=f"127.0.0.1:{port}",
               BOUNDSTATE_DATABASE_URL=f"sqlite://{tmp}/load.db", BOUNDSTATE_LOG="warn",
               BOUNDSTATE_MAX_QUEUED_JOBS="1000", BOUNDSTATE_REQUEST_TIMEOUT="60")
    server = subprocess.Popen([BIN, "serve"], env=env)
    try:
        for _ in range(200):
            try:
                req(base, "GET", "/readyz"); break
            except Exception:
                time.sleep(0.05)
        text = open(os.path.join(ROOT, "examples/data/digits8x8.txt")).read()
        _, ds = req(base, "POST", "/v1/datasets?name=digits8x8", text, "text/plain")
        _, j = req(base, "POST", "/v1/training-jobs", {"dataset_id": ds["id"], "description": {"order": 2}, "method": "pseudolikelihood", "seed": 1, "census": False})
        small = wait_job(base, j["id"])["model_id"]
        # N = 784 order-2 Hopfield model with 10 random patterns, imported; its census by mean field.
        rng = random.Random(7)
        n, k = 784, 10
        xi = [[rng.choice((-1, 1)) for _ in range(n)] for _ in range(k)]
        couplings = [{"spins": [i, j], "value": sum(x[i] * x[j] for x in xi) / n}
                     for i in range(n) for j in range(i + 1, n)]
        _, big = req(base, "POST", "/v1/models", {"name": "hopfield784", "temperature": 0.5,
                     "couplings": {"n_spins": n, "description": "order", "order": 2, "offset": 0.0, "couplings": couplings}})
        _, cj = req(base, "POST", f"/v1/models/{big['id']}/census", {"method": "mean_field", "random_starts": 50, "seed": 1})
        cj = wait_job(base, cj["id"])
        print(f"census of the N=784 model: {cj['status']}, {cj.get('result')}")
        # Retrieval latency, one query, end to end (client-side), 15 % of bits flipped.
        q = "".join("1" if (s > 0) != (rng.random() < 0.15) else "0" for s in xi[0])
        lat = []
        for _ in range(200):
            t = time.perf_counter()
            _, r = req(base, "POST", f"/v1/models/{big['id']}/retrieve", {"query": q, "seed": 1})
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        target = "".join("1" if s > 0 else "0" for s in xi[0])
        print(f"retrieve N=784 one query (idle server): median {lat[100]:.2f} ms, p99 {lat[197]:.2f} ms, "
              f"verdict {r['results'][0]['verdict']}, recovered {r['results'][0]['completed'] == target}")
        # A long training job keeps every compute thread busy during the load.
        _, bg = req(base, "POST", "/v1/training-jobs", {"dataset_id": ds["id"], "description": {"order": 2}, "method": "sampled",
                    "max_iterations": 20000, "tolerance": 1e-12, "seed": 3, "census": False})
        time.sleep(2)
        _, bgj = req(base, "GET", f"/v1/jobs/{bg['id']}")
        print(f"background training job {bg['id']}: {bgj['status']}")
        rows = []
        for name, path, body, conns in [
            ("GET /v1/models/{id} @8", f"/v1/models/{small}", None, 8),
            ("GET /v1/datasets", "/v1/datasets", None, a.connections),
            ("GET /v1/models/{id}", f"/v1/models/{small}", None, a.connections),
            ("POST retrieve N=784", f"/v1/models/{big['id']}/retrieve", {"query": q, "seed": 1}, a.connections),
            ("POST samples N=64 count=10", f"/v1/models/{small}/samples", {"count": 10, "sweeps": 20, "burn_in": 20, "seed": 1}, a.connections),
            ("GET /v1/models/{id} @256", f"/v1/models/{small}", None, 256),
            ("POST retrieve N=784 @256", f"/v1/models/{big['id']}/retrieve", {"query": q, "seed": 1}, 256),
        ]:
            rps, pct, bad, err = wrk(base, path, a.seconds, conns, body)
            rows.append((name, conns, rps, pct, bad, err))
        _, bgj = req(base, "GET", f"/v1/jobs/{bg['id']}")
        hwm, rss = rss_kib(server.pid)
        print(f"\n| endpoint | connections | requests/s | p50 ms | p90 ms | p99 ms | non-2xx | socket errors |")
        print("|---|---|---|---|---|---|---|---|")
        for name, conns, rps, pct, bad, err in rows:
            print(f"| {name} | {conns} | {rps:.0f} | {pct['50']:.2f} | {pct['90']:.2f} | {pct['99']:.2f} | {bad} | {err or 'none'} |")
        print(f"\nbackground training job still {bgj['status']} (iteration {bgj.get('progress', {}).get('iteration')})")
        print(f"server peak RSS {hwm / 1024:.0f} MiB, RSS now {rss / 1024:.0f} MiB")
        req(base, "POST", f"/v1/jobs/{bg['id']}/cancel", {})
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
