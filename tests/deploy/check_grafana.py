#!/usr/bin/env python3
"""Checks a Grafana dashboard against Prometheus /metrics texts.

Every metric name the dashboard's queries use (panel targets, rows' panels,
query variables such as label_values(metric, label)) must exist in one of
the metrics texts (the dashboard charts several exporters, e.g. ps-server's
sparkps_* and ps-worker's sparkps_trainer_*): as a sample, or declared by a # TYPE line (a family with no
series yet still counts). A histogram `h` exists as h_bucket, h_sum and
h_count (`h` alone names no series, so a query on it is reported); a summary
as h, h_sum and h_count; a counter declared without its _total (OpenMetrics)
also as h_total. Panels and targets must use the dashboard's Prometheus
datasource variable, so the dashboard imports anywhere.

Usage: check_grafana.py DASHBOARD.json METRICS.txt|- [METRICS.txt|- ...]
                        [--list]
  names are checked against the union of the files; - (stdin) at most once
  e.g. curl -s http://SERVER/metrics | check_grafana.py sparkps.json - w.txt
Exit status: 0 all present, 1 names missing or datasource problems (each
named on stderr), 2 usage or unreadable input.
"""
import argparse
import json
import re
import sys

# PromQL words that are not metric names when they stand alone.
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "atan2", "inf", "nan", "start", "end",
}
GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
TOKEN = re.compile(
    r"(?P<num>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
    r"(?:ms|[smhdwy])*)"
    r"|(?P<id>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?")


def metric_names(expr):
    """The metric names a PromQL expression reads."""
    e = GRAFANA_VAR.sub("0", expr)  # $__rate_interval -> 0, in [] below
    e = STRING.sub('""', e)
    e = re.sub(r"\{[^{}]*\}", " ", e)       # label matchers
    e = re.sub(r"\[[^\[\]]*\]", " ", e)     # ranges and subqueries
    e = GROUPING.sub(" ", e)                # by (...), on (...), ...
    names = set()
    for m in TOKEN.finditer(e):
        name = m.group("id")
        if name and not m.group("call") and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def variable_expr(query):
    """The PromQL inside a Grafana Prometheus variable query, or None."""
    q = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)", q,
                     re.S)
    if m:
        return m.group(1)
    if re.fullmatch(r"label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)", q):
        return None  # label values across all metrics
    m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
    if m:
        return m.group(1)
    if q.startswith("metrics(") or q.startswith("label_names("):
        return None
    return q


def dashboard_uses(dash):
    """(name -> sorted list of where it is used, datasource problems)."""
    uses, problems = {}, []
    templating = dash.get("templating", {}).get("list", [])
    ds_vars = {v.get("name") for v in templating
               if v.get("type") == "datasource"
               and v.get("query") == "prometheus"}
    if not ds_vars:
        problems.append("no Prometheus datasource variable in templating")

    def ds_ok(ds):
        if ds is None:
            return True  # inherits the panel's
        uid = ds.get("uid") if isinstance(ds, dict) else ds
        if isinstance(uid, str) and uid.startswith("-- "):
            return True  # Grafana's built-ins (annotations, mixed)
        m = re.fullmatch(r"\$\{?(\w+)\}?", uid or "")
        return bool(m) and m.group(1) in ds_vars

    def note(expr, where):
        for n in metric_names(expr):
            uses.setdefault(n, set()).add(where)

    def walk(panels):
        for p in panels:
            title = p.get("title") or f"panel {p.get('id')}"
            if not ds_ok(p.get("datasource")):
                problems.append(f'panel "{title}": datasource '
                                f'{p.get("datasource")!r} is not the '
                                "datasource variable")
            for t in p.get("targets", []):
                if not ds_ok(t.get("datasource")):
                    problems.append(f'panel "{title}" target '
                                    f'{t.get("refId")}: datasource '
                                    f'{t.get("datasource")!r} is not the '
                                    "datasource variable")
                if t.get("expr"):
                    note(t["expr"], f'panel "{title}"')
            walk(p.get("panels", []))  # a collapsed row holds its panels

    walk(dash.get("panels", []))
    for v in templating:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        e = variable_expr(q)
        if e:
            note(e, f'variable "{v.get("name")}"')
    return {n: sorted(w) for n, w in uses.items()}, problems


def exposed(text):
    """(names a query can use, histogram base names) from /metrics text."""
    names, types = set(), {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line)
        if m:
            names.add(m.group(0))
    histograms = set()
    for n, t in types.items():
        if t in ("histogram", "gaugehistogram"):
            names.update({n + "_bucket", n + "_sum", n + "_count"})
            histograms.add(n)
        elif t == "summary":
            names.update({n, n + "_sum", n + "_count"})
        elif t == "counter":
            names.add(n)
            if not n.endswith("_total"):
                names.add(n + "_total")
        else:
            names.add(n)
    names -= histograms  # a histogram's own name has no series
    return names, histograms


def read_metrics(path):
    """A metrics file's text; - is stdin."""
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser(
        description="Check that a Grafana dashboard's metrics exist in "
                    "/metrics texts (their union).")
    ap.add_argument("dashboard", help="Grafana dashboard JSON")
    ap.add_argument("metrics", nargs="+",
                    help="Prometheus text format; - for stdin (once)")
    ap.add_argument("--list", action="store_true",
                    help="print every metric name the dashboard uses")
    args = ap.parse_args()
    if args.metrics.count("-") > 1:
        ap.error("- (stdin) can be given once")
    try:
        with open(args.dashboard, encoding="utf-8") as f:
            dash = json.load(f)
        texts = [read_metrics(m) for m in args.metrics]
    except (OSError, ValueError) as e:
        print(f"check_grafana: {e}", file=sys.stderr)
        return 2
    if not isinstance(dash, dict):
        print(f"check_grafana: {args.dashboard}: not a dashboard object",
              file=sys.stderr)
        return 2

    uses, problems = dashboard_uses(dash)
    have, histograms = set(), set()
    for text in texts:
        h, hist = exposed(text)
        have |= h
        histograms |= hist
    sources = " + ".join("stdin" if m == "-" else m for m in args.metrics)
    if args.list:
        for n in sorted(uses):
            print(n)
    missing = sorted(n for n in uses if n not in have)
    for n in missing:
        hint = ""
        if n in histograms:
            hint = f" ({n} is a histogram: query {n}_bucket, _sum or _count)"
        print(f"missing from {sources}: {n}{hint}; used by "
              + ", ".join(uses[n]), file=sys.stderr)
    for p in problems:
        print(f"{args.dashboard}: {p}", file=sys.stderr)
    if not uses:
        print(f"{args.dashboard}: no metric names found in its queries",
              file=sys.stderr)
        return 1
    if missing or problems:
        return 1
    print(f"check_grafana: the {len(uses)} metric names "
          f"{args.dashboard} uses are all in {sources}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
