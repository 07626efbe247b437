"""The soak's curves as one SVG file (no plotting library: plain SVG text), for soak_report.py.

Six panels over the same time axis: gateway RSS; open fds (and fds minus the pooled
backend connections); client sessions and connections; stdio children and threads;
requests per second and failed exchanges per second between samples (each on its own
scale). Vertical lines mark the events: reloads
(grey), `web` killed (red), `side` killed (orange), the end of the traffic (black, dashed).
"""

from html import escape

W, PANEL_H, LEFT, RIGHT, TOP, GAP = 960, 100, 70, 150, 40, 30
EVENT_STYLE = {
    "reload": ('stroke="#bbbbbb" stroke-width="1"', "reload"),
    "kill_web": ('stroke="#d62728" stroke-width="1.5"', "web killed"),
    "kill_side": ('stroke="#ff7f0e" stroke-width="1.5"', "side killed"),
    "traffic_stopped": ('stroke="#000000" stroke-width="1" stroke-dasharray="4,3"', "traffic stops"),
}


def nice_max(v):
    """A round upper bound for an axis, a little above v so a constant is not on the frame."""
    if v <= 0:
        return 1.0
    v *= 1.05
    mag = 10 ** len(str(int(v))) / 10
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * mag >= v:
            return m * mag
    return v


def rates(rows):
    """Requests and errors per second between consecutive samples (0 for the first)."""
    out_r, out_e = [0.0], [0.0]
    for a, b in zip(rows, rows[1:]):
        dt = b["elapsed_s"] - a["elapsed_s"]
        if dt <= 0 or b["phase"] == "settle":
            out_r.append(0.0)
            out_e.append(0.0)
            continue
        out_r.append(max(0.0, (b["requests"] - a["requests"]) / dt))
        out_e.append(max(0.0, (b["errors"] - a["errors"]) / dt))
    return out_r, out_e


def render(rows, events, path, title):
    """Writes the SVG of `rows` (CSV samples as dicts of numbers) and `events` to `path`."""
    req_s, err_s = rates(rows)
    panels = [
        ("RSS MiB", [("RSS", "#1f77b4", [r["rss_kb"] / 1024 for r in rows])]),
        ("fds", [("open fds", "#2ca02c", [r["fds"] for r in rows]),
                 ("fds − pool", "#8c564b", [r["fds"] - max(r["pool"], 0) for r in rows])]),
        ("sessions", [("sessions", "#9467bd", [max(r["sessions"], 0) for r in rows]),
                      ("connections", "#17becf", [max(r["connections"], 0) for r in rows])]),
        ("processes", [("children", "#8c564b", [r["children"] for r in rows]),
                       ("threads", "#1f77b4", [r["threads"] for r in rows])]),
        ("requests/s", [("requests", "#2ca02c", req_s)]),
        ("failed/s", [("failed", "#d62728", err_s)]),
    ]
    t = [r["elapsed_s"] for r in rows]
    t_max = nice_max(max(t) if t else 1)
    plot_w = W - LEFT - RIGHT
    height = TOP + len(panels) * (PANEL_H + GAP) + 10
    x = lambda v: LEFT + plot_w * v / t_max  # noqa: E731
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<rect width="{W}" height="{height}" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14">{escape(title)}</text>',
    ]
    for i, (label, series) in enumerate(panels):
        y0 = TOP + i * (PANEL_H + GAP)
        vmax = nice_max(max((max(s) for _, _, s in series if s), default=1))
        y = lambda v, y0=y0, vmax=vmax: y0 + PANEL_H - PANEL_H * v / vmax  # noqa: E731
        out.append(f'<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" '
                   f'fill="none" stroke="#888"/>')
        for frac in (0, 0.5, 1):
            yy = y(vmax * frac)
            out.append(f'<text x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">'
                       f'{vmax * frac:g}</text>')
            if 0 < frac < 1:
                out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" '
                           f'stroke="#eee"/>')
        out.append(f'<text x="12" y="{y0 + PANEL_H / 2:.0f}" transform="rotate(-90 12 '
                   f'{y0 + PANEL_H / 2:.0f})" text-anchor="middle">{escape(label)}</text>')
        for ev_t, name in events:
            style = EVENT_STYLE.get(name)
            if style and ev_t <= t_max:
                out.append(f'<line x1="{x(ev_t):.1f}" x2="{x(ev_t):.1f}" y1="{y0}" '
                           f'y2="{y0 + PANEL_H}" {style[0]}/>')
        for k, (name, color, s) in enumerate(series):
            pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(t, s))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"/>')
            out.append(f'<text x="{LEFT + plot_w + 8}" y="{y0 + 14 + 14 * k}" fill="{color}">'
                       f'{escape(name)}</text>')
    # time axis under the last panel, legend of the event lines on the right
    y_axis = TOP + len(panels) * (PANEL_H + GAP) - GAP + 14
    for k in range(6):
        v = t_max * k / 5
        out.append(f'<text x="{x(v):.1f}" y="{y_axis}" text-anchor="middle">{v:g} s</text>')
    for k, (style, name) in enumerate(EVENT_STYLE.values()):
        yy = TOP + 2 * (PANEL_H + GAP) + 40 + 16 * k
        out.append(f'<line x1="{LEFT + plot_w + 8}" x2="{LEFT + plot_w + 28}" y1="{yy}" '
                   f'y2="{yy}" {style}/>')
        out.append(f'<text x="{LEFT + plot_w + 32}" y="{yy + 4}">{escape(name)}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
