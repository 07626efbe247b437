#!/usr/bin/env python3
"""The soak's verdict, summary and plot, from what perf/soak.sh recorded.

    soak_report.py --csv OUT.csv --events LOGS/events.tsv --logs LOGS --out OUT
                   --grace S --rss-tol PCT --scrape-fails N --params "K=V ..." --machine TEXT

Reads the samples (CSV), the events (reloads, kills, restarts, stop), the load driver's
counts (LOGS/driver/status.json) and failed exchanges (LOGS/driver/errors.tsv). Prints the
summary, writes it as markdown to OUT.md (a block to paste into docs/reliability.md) and the
curves to OUT.svg. Exit status 0 when every check passes ("flat"), 1 otherwise.

Checks (each computed from the recorded figures, none hand-set):
  - the gateway stayed up, and stopped on SIGTERM with exit 0 and no child left behind;
  - RSS grew less than --rss-tol % over the second half of the traffic (median of the first
    three samples of that half vs the last three), and its least-squares slope is shown;
  - fds (minus pooled backend connections), threads and sessions in the second half stay
    within the first half's maximum (fds +max(8, 10 %), sessions +max(5, 20 %); for
    sessions the first half starts after 1.5 idle timeouts, when abandoned sessions have
    begun to expire: n/a if the run is too short for that);
  - after every kill, the first sample --grace s later (and 3 s away from any reload) has
    the expected stdio children, no zombie, and fds (minus pool, per child) back within 8 of
    the sample before the kill;
  - after the traffic, the starting config restored and the idle timeout passed: no session
    left, the starting children, fds (minus pool) within 8 of the start;
  - no zombie child in two samples in a row; every scrape of /metrics answered;
  - no ERROR line and no panic in the gateway's log;
  - every reload applied (reload counter >= reloads made, no reload rejected), and the GET
    streams received list_changed notifications;
  - no unexpected error: an error is expected only on the killed backend, from its kill
    until --grace s after it is back (for `web`: its restart).
"""

import argparse
import csv
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak_plot  # noqa: E402

COLS = ["rss_kb", "fds", "threads", "sessions", "connections", "pool", "children", "zombies",
        "reloads", "reload_errors", "requests", "errors", "cpu_s"]
FD_SLACK = 8
FDS_PER_CHILD = 3  # a stdio child's stdin, stdout and stderr (socket pairs; measured)


def load_rows(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            row = {"elapsed_s": float(r["elapsed_s"]), "phase": r["phase"]}
            row.update({c: float(r[c]) for c in COLS})
            rows.append(row)
    return rows


def load_events(path):
    out = []
    with open(path) as f:
        for line in f:
            t, unix, name, detail = (line.rstrip("\n").split("\t") + [""])[:4]
            out.append({"t": float(t), "unix": float(unix), "name": name, "detail": detail})
    return out


def kv(detail):
    return dict(p.split("=", 1) for p in detail.split() if "=" in p)


def slope_per_min(points):
    """Least-squares slope of (t s, v) points, per minute."""
    if len(points) < 2:
        return 0.0
    mt = statistics.fmean(p[0] for p in points)
    mv = statistics.fmean(p[1] for p in points)
    den = sum((p[0] - mt) ** 2 for p in points)
    return 60 * sum((p[0] - mt) * (p[1] - mv) for p in points) / den if den else 0.0


def fd_net(r):
    """Open fds minus pooled backend connections and the children's pipes."""
    return r["fds"] - max(r["pool"], 0) - FDS_PER_CHILD * r["children"]


def log_lines(path):
    """(ERROR and panic lines, number of WARN lines) of the gateway's log."""
    bad, warns = [], 0
    with open(path, errors="replace") as f:
        for line in f:
            if " ERROR " in line or "panicked" in line:
                bad.append(line.strip())
            elif " WARN " in line:
                warns += 1
    return bad, warns


def main():
    ap = argparse.ArgumentParser()
    for a in ("--csv", "--events", "--logs", "--out", "--params", "--machine"):
        ap.add_argument(a, required=True)
    ap.add_argument("--grace", type=float, default=15)
    ap.add_argument("--rss-tol", type=float, default=5)
    ap.add_argument("--scrape-fails", type=int, default=0)
    a = ap.parse_args()

    rows = load_rows(a.csv)
    events = load_events(a.events)
    base = next(r for r in rows if r["phase"] == "base")
    load = [r for r in rows if r["phase"] == "load"]
    settle = [r for r in rows if r["phase"] == "settle"]
    ev = lambda name: [e for e in events if e["name"] == name]  # noqa: E731
    start = ev("start")[0]
    t0_unix = start["unix"] - start["t"]
    checks = []

    def check(name, ok, detail):
        """ok: True, False, or None when the run is too short to tell (shown as n/a)."""
        checks.append((name, None if ok is None else bool(ok), detail))

    # --- the process --------------------------------------------------------------------
    died = ev("gateway_died")
    check("gateway up for the whole run", not died, died[0]["detail"] if died else
          f"{len(load)} samples over {load[-1]['elapsed_s']:.0f} s")
    stopped = ev("gateway_stopped")
    if stopped:
        s = kv(stopped[0]["detail"])
        check("stops on SIGTERM, exit 0, no child left", s["exit"] == "0" and s["left"] == "0",
              f"exit {s['exit']} in {s['ms']} ms; {s['left']} of {s['children']} children left")

    # --- flatness over the traffic --------------------------------------------------------
    t_end = load[-1]["elapsed_s"]
    first = [r for r in load if r["elapsed_s"] < t_end / 2]
    second = [r for r in load if r["elapsed_s"] >= t_end / 2]
    rss_a = statistics.median(r["rss_kb"] for r in second[:3])
    rss_b = statistics.median(r["rss_kb"] for r in second[-3:])
    growth = 100 * (rss_b - rss_a) / rss_a
    rss_slope = slope_per_min([(r["elapsed_s"], r["rss_kb"]) for r in second])
    check(f"RSS growth over the second half < {a.rss_tol:g} %", growth < a.rss_tol,
          f"{rss_a / 1024:.1f} → {rss_b / 1024:.1f} MiB ({growth:+.1f} %), slope "
          f"{rss_slope:+.1f} KiB/min over t ≥ {t_end / 2:.0f} s")
    ok_rows = lambda rs: [r for r in rs if r["sessions"] >= 0]  # noqa: E731
    f1 = max(fd_net(r) for r in ok_rows(first))
    f2 = max(fd_net(r) for r in ok_rows(second))
    check("fds (minus pool, children's pipes) bounded", f2 <= f1 + max(FD_SLACK, 0.1 * f1),
          f"max {f1:.0f} in the first half, {f2:.0f} in the second")
    th1, th2 = max(r["threads"] for r in first), max(r["threads"] for r in second)
    check("threads constant", th2 <= th1, f"max {th1:.0f} then {th2:.0f}")
    # Abandoned sessions pile up until the first ones expire (idle timeout + an expiry tick
    # of a quarter of it): compare the second half with the first half after that warm-up.
    warm = 1.5 * float(dict(p.split("=", 1) for p in a.params.split())["SESSION_IDLE_S"])
    steady = [r for r in ok_rows(first) if r["elapsed_s"] >= warm]
    s2 = max(r["sessions"] for r in ok_rows(second))
    if steady:
        s1 = max(r["sessions"] for r in steady)
        check("sessions bounded", s2 <= s1 + max(5, 0.2 * s1),
              f"max {s1:.0f} in {warm:.0f} s to half-time, {s2:.0f} in the second half")
    else:
        check("sessions bounded", None, f"run too short: sessions reach their steady state "
              f"after ~{warm:.0f} s, half-time is {t_end / 2:.0f} s (max {s2:.0f} in the "
              "second half)")

    # --- after every kill -----------------------------------------------------------------
    reloads = [(e["t"], int(kv(e["detail"])["expect_children"])) for e in ev("reload")]

    def expected_children(t):
        exp = 2
        for rt, n in reloads:
            if rt <= t:
                exp = n
        return exp

    kills = [e for e in events if e["name"] in ("kill_web", "kill_side")]
    restarts = ev("restart_web")
    windows, kill_rows = [], []
    for k in kills:
        backend = k["name"][5:]
        back = k["t"]
        if backend == "web":
            back = next((r["t"] for r in restarts if r["t"] >= k["t"]), t_end)
        windows.append((backend, k["t"] - 0.5, back + a.grace, k))
        pre = [r for r in load if r["elapsed_s"] < k["t"]]
        post = [r for r in rows if r["phase"] != "base" and r["elapsed_s"] >= back + a.grace
                and all(abs(r["elapsed_s"] - rt) >= 3 for rt, _ in reloads)]
        if not pre or not post or "none" in k["detail"]:
            kill_rows.append((k, backend, pre[-1] if pre else None, None, None))
            continue
        p, q = pre[-1], post[0]
        exp = expected_children(q["elapsed_s"])
        ok = q["children"] == exp and q["zombies"] == 0 and fd_net(q) <= fd_net(p) + FD_SLACK
        kill_rows.append((k, backend, p, q, exp))
        check(f"back after killing {backend} at t={k['t']:.0f} s", ok,
              f"at t={q['elapsed_s']:.0f} s: children {q['children']:.0f} (expected {exp}), "
              f"zombies {q['zombies']:.0f}, fds−pool−pipes {fd_net(p):.0f} → {fd_net(q):.0f}")

    # --- after the traffic ----------------------------------------------------------------
    if settle:
        z = settle[-1]
        check("no session left after the idle timeout", z["sessions"] == 0,
              f"{z['sessions']:.0f} sessions, {z['connections']:.0f} connections at "
              f"t={z['elapsed_s']:.0f} s")
        check("children and fds back to the start", z["children"] == base["children"]
              and fd_net(z) <= fd_net(base) + FD_SLACK,
              f"children {base['children']:.0f} → {z['children']:.0f}; fds {base['fds']:.0f} → "
              f"{z['fds']:.0f} (pool {base['pool']:.0f} → {z['pool']:.0f})")
    zz = [r["elapsed_s"] for r, s in zip(rows, rows[1:]) if r["zombies"] > 0 and s["zombies"] > 0]
    check("no zombie child in two samples in a row", not zz,
          f"at t={zz[0]:.0f} s" if zz else f"max {max(r['zombies'] for r in rows):.0f} in a sample")
    check("every /metrics scrape answered", a.scrape_fails == 0, f"{a.scrape_fails} failed")
    bad, warns = log_lines(os.path.join(a.logs, "gateway.log"))
    check("no ERROR and no panic in the gateway log", not bad,
          (f"{len(bad)}, first: {bad[0][:160]}" if bad else "none") +
          f"; {warns} WARN lines (breakers, health, restarts of killed backends)")
    last = ok_rows(rows)[-1]
    check("every reload applied, none rejected",
          last["reloads"] >= len(reloads) and last["reload_errors"] == 0,
          f"{len(reloads)} reloads made, counter {last['reloads']:.0f}, "
          f"rejected {last['reload_errors']:.0f}")

    # --- errors -----------------------------------------------------------------------------
    status = json.load(open(os.path.join(a.logs, "driver", "status.json")))
    check("GET streams got list_changed after reloads",
          status["notifications"] > 0 or not reloads,
          f"{status['notifications']} list_changed notifications on the streams")
    expected = {}
    unexpected = []
    per_window = [[] for _ in windows]
    with open(os.path.join(a.logs, "driver", "errors.tsv")) as f:
        for line in f:
            unix, kind, backend, detail = line.rstrip("\n").split("\t", 3)
            t = float(unix) - t0_unix
            hit = next((i for i, w in enumerate(windows) if w[0] == backend and w[1] <= t <= w[2]),
                       None)
            if hit is None:
                unexpected.append((t, kind, backend, detail))
            else:
                per_window[hit].append(t)
                key = f"{kind}|{backend}"
                expected[key] = expected.get(key, 0) + 1
    logged = sum(v["err"] for v in status["counts"].values())
    check("no unexpected error", not unexpected and logged == sum(expected.values()),
          f"{len(unexpected)} outside the kill windows" +
          (f", first at t={unexpected[0][0]:.1f} s: {unexpected[0][1]} {unexpected[0][2]} "
           f"{unexpected[0][3][:160]}" if unexpected else ""))

    flat = all(ok is not False for _, ok, _ in checks)
    md = report_md(a, rows, base, load, settle, events, checks, flat, status, expected,
                   kill_rows, per_window, rss_slope, unexpected)
    with open(a.out + ".md", "w") as f:
        f.write(md)
    title = (f"only1mcp-uring soak: {t_end:.0f} s, {status['requests']} requests, "
             f"{len(reloads)} reloads, {len(kills)} kills — {'flat' if flat else 'NOT flat'}")
    soak_plot.render(rows, [(e["t"], e["name"]) for e in events], a.out + ".svg", title)
    print(md)
    return 0 if flat else 1


def report_md(a, rows, base, load, settle, events, checks, flat, status, expected, kill_rows,
              per_window, rss_slope, unexpected):
    params = dict(p.split("=", 1) for p in a.params.split())
    t_end = load[-1]["elapsed_s"]
    start_detail = kv(next(e for e in events if e["name"] == "start")["detail"])
    svg = os.path.relpath(a.out + ".svg")
    out = [f"#### Soak run `{os.path.basename(a.out)}`", ""]
    out.append(f"Command: `{' '.join(f'{k}={v}' for k, v in params.items())} perf/soak.sh`; "
               f"gateway `--cores {start_detail.get('cores')}`; {len(rows)} samples. "
               f"Machine: {a.machine}. Curves: `{svg}` (published with this summary as "
               f"`docs/img/soak.svg`: `cp {svg} docs/img/soak.svg`).")
    out += ["", "![soak curves: RSS, fds, sessions, children and threads, requests and "
            "failures per second](img/soak.svg)"]
    out += ["", f"**Verdict: {'flat' if flat else 'NOT flat'}** "
            f"({sum(ok is True for _, ok, _ in checks)} of {len(checks)} checks pass"
            + (f", {sum(ok is None for _, ok, _ in checks)} n/a: the run is too short for them"
               if any(ok is None for _, ok, _ in checks) else "") + ")", "",
            "| check | result | figures |", "|---|---|---|"]
    out += [f"| {n} | {'n/a' if ok is None else 'pass' if ok else '**FAIL**'} | {d} |"
            for n, ok, d in checks]

    def col(name, scale=1.0, fmt="{:.0f}"):
        vals = [r[name] / scale for r in load if r[name] >= 0]
        after = settle[-1][name] / scale if settle else float("nan")
        return (f"| {name} | {fmt.format(base[name] / scale)} | {fmt.format(vals[0])} | "
                f"{fmt.format(vals[-1])} | {fmt.format(min(vals))} | {fmt.format(max(vals))} | "
                f"{fmt.format(after)} |")

    out += ["", "| column | before traffic | first | last | min | max | after settle |",
            "|---|---:|---:|---:|---:|---:|---:|", col("rss_kb", 1024, "{:.1f}").replace(
                "| rss_kb |", "| RSS MiB |")]
    out += [col(c) for c in ("fds", "pool", "threads", "sessions", "connections", "children",
                             "zombies")]
    cpu = load[-1]["cpu_s"] - load[0]["cpu_s"]
    stop = [kv(e["detail"]) for e in events if e["name"] == "traffic_stopped"]
    drv_cpu = stop[0].get("driver_cpu_s") if stop else None
    span = load[-1]["elapsed_s"] - load[0]["elapsed_s"]
    out += ["", f"RSS slope over the second half: {rss_slope:+.1f} KiB/min "
            f"({rss_slope * 60 / 1024:+.2f} MiB per hour if it went on). Gateway CPU during the "
            f"traffic: {cpu:.0f} s in {span:.0f} s ({100 * cpu / max(span, 1):.0f} % of one core)"
            + (f"; the load driver's: {drv_cpu} s." if drv_cpu else ".")]
    n_exp = sum(expected.values())
    out += ["", f"Traffic: {status['requests']} requests in {t_end:.0f} s "
            f"({status['requests'] / max(t_end, 1):.0f}/s); {status['errors']} failed: "
            f"{n_exp} expected (the killed backend, inside its window), "
            f"{len(unexpected)} unexpected. {status['notifications']} list_changed "
            "notifications reached the GET streams.", "",
            "| kind | backend | ok | failed | of which expected |", "|---|---|---:|---:|---:|"]
    for key, c in status["counts"].items():
        kind, backend = key.split("|")
        out.append(f"| {kind} | {backend} | {c['ok']} | {c['err']} | {expected.get(key, 0)} |")
    if kill_rows:
        out += ["", "| kill | t s | backend | pid | failed calls | last failure after | "
                "children after (expected) | fds−pool−pipes before → after |",
                "|---:|---:|---|---|---:|---:|---:|---:|"]
        for i, ((k, backend, p, q, exp), errs) in enumerate(zip(kill_rows, per_window), 1):
            last = f"{max(errs) - k['t']:.1f} s" if errs else "–"
            after = f"{q['children']:.0f} ({exp})" if q else "–"
            fds = f"{fd_net(p):.0f} → {fd_net(q):.0f}" if p and q else "–"
            out.append(f"| {i} | {k['t']:.0f} | {backend} | {kv(k['detail']).get('pid', '–')} | "
                       f"{len(errs)} | {last} | {after} | {fds} |")
    step = max(1, len(rows) // 14)
    pick = rows[::step] + ([rows[-1]] if (len(rows) - 1) % step else [])
    out += ["", "| t s | phase | RSS MiB | fds | pool | sessions | conns | children | threads | "
            "requests | errors |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in pick:
        out.append(f"| {r['elapsed_s']:.0f} | {r['phase']} | {r['rss_kb'] / 1024:.1f} | "
                   f"{r['fds']:.0f} | {r['pool']:.0f} | {r['sessions']:.0f} | "
                   f"{r['connections']:.0f} | {r['children']:.0f} | {r['threads']:.0f} | "
                   f"{r['requests']:.0f} | {r['errors']:.0f} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
