"""Tests of check_grafana.py and of deploy/grafana/sparkps.json against a
hand-written /metrics sample (sample_metrics.txt, the names mon's branch
implements). Standard library only: `python3 -m unittest` or pytest. With
promtool on PATH, the sample must pass `promtool check metrics` and every
query of the dashboard must parse (`promtool check rules`)."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "sparkps.json")
SAMPLE = os.path.join(HERE, "sample_metrics.txt")
CHECK = os.path.join(HERE, "check_grafana.py")
sys.path.insert(0, HERE)
import check_grafana  # noqa: E402

DS = {"type": "prometheus", "uid": "${datasource}"}


def dashboard(*exprs, panel_ds=DS, nested=False):
    """A minimal dashboard: one panel per expression."""
    panels = [{"type": "timeseries", "id": i, "title": f"p{i}",
               "datasource": panel_ds,
               "targets": [{"refId": "A", "datasource": DS, "expr": e}]}
              for i, e in enumerate(exprs)]
    if nested:
        panels = [{"type": "row", "id": 99, "title": "r", "collapsed": True,
                   "panels": panels}]
    return {"panels": panels, "templating": {"list": [
        {"type": "datasource", "name": "datasource", "query": "prometheus"}]}}


class Run:
    """check_grafana.py on a dashboard object and a metrics text."""

    def __init__(self, dash, metrics):
        with tempfile.TemporaryDirectory() as d:
            dpath, mpath = os.path.join(d, "d.json"), os.path.join(d, "m.txt")
            with open(dpath, "w") as f:
                json.dump(dash, f) if not isinstance(dash, str) else f.write(dash)
            with open(mpath, "w") as f:
                f.write(metrics)
            r = subprocess.run([sys.executable, CHECK, dpath, mpath],
                               capture_output=True, text=True)
        self.rc, self.out, self.err = r.returncode, r.stdout, r.stderr


def sample():
    with open(SAMPLE) as f:
        return f.read()


def without(text, name, keep_type=False):
    """The metrics text with NAME's samples (and HELP/TYPE) removed."""
    out = []
    for line in text.splitlines():
        m = re.match(r"(?:# (?:HELP|TYPE) )?([A-Za-z_:][A-Za-z0-9_:]*)", line)
        if m and m.group(1) == name and not (keep_type and line.startswith("# ")):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


class TestSparkpsDashboard(unittest.TestCase):
    def test_dashboard_metrics_all_in_sample(self):
        with open(DASHBOARD) as f:
            r = Run(json.load(f), sample())
        self.assertEqual(r.rc, 0, r.err)
        self.assertIn("are all in", r.out)

    def test_dashboard_uses_every_contract_metric(self):
        with open(DASHBOARD) as f:
            uses, problems = check_grafana.dashboard_uses(json.load(f))
        self.assertEqual(problems, [])
        have, hist = check_grafana.exposed(sample())
        contract = {n for n in have if not n.endswith(("_sum", "_count"))}
        self.assertEqual(contract - set(uses), set())

    def test_dashboard_shape(self):
        with open(DASHBOARD) as f:
            d = json.load(f)
        names = {v["name"] for v in d["templating"]["list"]}
        self.assertTrue({"datasource", "job", "instance"} <= names)
        self.assertGreaterEqual(d["schemaVersion"], 36)
        for p in d["panels"]:
            for t in p.get("targets", []):
                self.assertIn('instance=~"$instance"', t["expr"], p["title"])
                self.assertIn('job=~"$job"', t["expr"], p["title"])
        titles = " ".join(p["title"] for p in d["panels"]).lower()
        for want in ("samples/s", "loss", "accuracy", "requests/s",
                     "latency", "bytes/s", "errors/s", "optimizer",
                     "table memory", "live workers", "staleness"):
            self.assertIn(want, titles)

    @unittest.skipUnless(shutil.which("promtool"), "promtool not on PATH")
    def test_sample_is_valid_exposition(self):
        r = subprocess.run(["promtool", "check", "metrics"], input=sample(),
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    @unittest.skipUnless(shutil.which("promtool"), "promtool not on PATH")
    def test_dashboard_queries_parse(self):
        with open(DASHBOARD) as f:
            d = json.load(f)
        exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
        rules = []
        for i, e in enumerate(exprs):
            e = e.replace("$__rate_interval", "1m")
            e = re.sub(r"\$\{?\w+\}?", ".*", e)
            rules.append({"record": f"check:expr{i}", "expr": e})
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
            f.flush()
            r = subprocess.run(["promtool", "check", "rules", f.name],
                               capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class TestCheck(unittest.TestCase):
    def test_missing_metric_is_named_with_its_panel(self):
        with open(DASHBOARD) as f:
            r = Run(json.load(f), without(sample(), "sparkps_worker_loss"))
        self.assertEqual(r.rc, 1)
        self.assertIn("sparkps_worker_loss", r.err)
        self.assertIn('panel "Loss"', r.err)

    def test_declared_family_without_series_counts(self):
        text = without(sample(), "sparkps_worker_loss", keep_type=True)
        self.assertIn("# TYPE sparkps_worker_loss gauge", text)
        with open(DASHBOARD) as f:
            self.assertEqual(Run(json.load(f), text).rc, 0)

    def test_histogram_series_from_type_line(self):
        text = "# TYPE lat_seconds histogram\n"
        r = Run(dashboard("rate(lat_seconds_bucket[5m])",
                          "lat_seconds_sum / lat_seconds_count"), text)
        self.assertEqual(r.rc, 0, r.err)

    def test_histogram_base_name_is_reported(self):
        r = Run(dashboard("rate(sparkps_request_duration_seconds[5m])"),
                sample())
        self.assertEqual(r.rc, 1)
        self.assertIn("is a histogram", r.err)

    def test_openmetrics_counter_and_summary(self):
        text = ("# TYPE reqs counter\nreqs_total 1\n"
                "# TYPE rpc summary\nrpc{quantile=\"0.5\"} 1\n"
                "rpc_sum 2\nrpc_count 3\n")
        self.assertEqual(Run(dashboard("rate(reqs_total[1m])", "rpc",
                                       "rpc_sum / rpc_count"), text).rc, 0)

    def test_collapsed_row_panels_are_checked(self):
        r = Run(dashboard("nope_metric", nested=True), sample())
        self.assertEqual(r.rc, 1)
        self.assertIn("nope_metric", r.err)

    def test_variable_query_metric_is_checked(self):
        d = dashboard("sparkps_memory_bytes")
        d["templating"]["list"].append(
            {"type": "query", "name": "job",
             "query": {"query": "label_values(gone_info{a=\"b\"}, job)"}})
        r = Run(d, sample())
        self.assertEqual(r.rc, 1)
        self.assertIn('gone_info; used by variable "job"', r.err)

    def test_fixed_datasource_is_a_problem(self):
        r = Run(dashboard("sparkps_memory_bytes",
                          panel_ds={"type": "prometheus", "uid": "P1809F7"}),
                sample())
        self.assertEqual(r.rc, 1)
        self.assertIn("is not the datasource variable", r.err)

    def test_unreadable_input(self):
        self.assertEqual(Run("{not json", sample()).rc, 2)
        r = subprocess.run([sys.executable, CHECK, DASHBOARD, "/nonexistent"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent", r.stderr)


class TestPromqlNames(unittest.TestCase):
    def names(self, e):
        return check_grafana.metric_names(e)

    def test_functions_groupings_matchers_ranges(self):
        self.assertEqual(self.names(
            'histogram_quantile(0.99, sum by (type, le) (rate(a_bucket{job=~'
            '"$job", type=~"push|pull"}[$__rate_interval])))'), {"a_bucket"})

    def test_binary_operators_and_modifiers(self):
        self.assertEqual(self.names(
            "sum without (instance) (b) / on (x) group_left (y) c offset 5m"
            " > bool 1e3"), {"b", "c"})
        self.assertEqual(self.names("max by (w) (e{w!=\"1\"}) unless f @ "
                                    "start() and g:rec:rate5m"),
                         {"e", "f", "g:rec:rate5m"})

    def test_strings_numbers_subqueries(self):
        self.assertEqual(self.names(
            'label_replace(d, "dst", "$1", "src", "(.*)") or vector(0)'),
            {"d"})
        self.assertEqual(self.names("sum(rate(g[5m:1m])) * 0x1F + .5"), {"g"})
        self.assertEqual(self.names("1 + 2.5e-3"), set())

    def test_variable_queries(self):
        v = check_grafana.variable_expr
        self.assertEqual(v('label_values(m{job="x"}, instance)'),
                         'm{job="x"}')
        self.assertIsNone(v("label_values(job)"))
        self.assertEqual(v("query_result(count(up))"), "count(up)")


if __name__ == "__main__":
    unittest.main()
