"""Tests of check_grafana.py and of deploy/grafana/sparkps.json against
hand-written /metrics samples: a server's (sample_metrics.txt, the names
ps-server exports) and a worker's (sample_worker_metrics.txt, ps-worker
--http's sparkps_trainer_* names), the dashboard charting both. Standard
library only: `python3 -m unittest` or pytest. With promtool on PATH, the
samples must pass `promtool check metrics` and every query of the dashboard
must parse (`promtool check rules`)."""
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
WORKER_SAMPLE = os.path.join(HERE, "sample_worker_metrics.txt")
CHECK = os.path.join(HERE, "check_grafana.py")
sys.path.insert(0, HERE)
import check_grafana  # noqa: E402

DS = {"type": "prometheus", "uid": "${datasource}"}
# ps-worker's figures the Training row already charts from what the servers
# are told (sparkps_worker_epoch, _loss, _accuracy): not in the Workers row.
TRAINING_ROW_DUPLICATES = {
    "sparkps_trainer_epoch", "sparkps_trainer_train_loss",
    "sparkps_trainer_train_accuracy", "sparkps_trainer_eval_epoch",
    "sparkps_trainer_eval_loss", "sparkps_trainer_eval_accuracy"}
WORKERS_ROW = "Workers (ps-worker --http)"


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
    """check_grafana.py on a dashboard object and metrics texts (one, or a
    list: files m0.txt, m1.txt, ...; STDIN, if given, on stdin as -)."""

    def __init__(self, dash, metrics, stdin=None):
        texts = [metrics] if isinstance(metrics, str) else metrics
        with tempfile.TemporaryDirectory() as d:
            dpath = os.path.join(d, "d.json")
            with open(dpath, "w") as f:
                json.dump(dash, f) if not isinstance(dash, str) else f.write(dash)
            mpaths = []
            for i, text in enumerate(texts):
                mpaths.append(os.path.join(d, f"m{i}.txt"))
                with open(mpaths[-1], "w") as f:
                    f.write(text)
            if stdin is not None:
                mpaths.append("-")
            r = subprocess.run([sys.executable, CHECK, dpath, *mpaths],
                               input=stdin, capture_output=True, text=True)
        self.rc, self.out, self.err = r.returncode, r.stdout, r.stderr


def sample():
    with open(SAMPLE) as f:
        return f.read()


def worker_sample():
    with open(WORKER_SAMPLE) as f:
        return f.read()


def samples():
    """The server's and the worker's sample, as two files."""
    return [sample(), worker_sample()]


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def split_rows(d):
    """(panels above the Workers row, the Workers row's panels)."""
    titles = [p["title"] for p in d["panels"]]
    i = titles.index(WORKERS_ROW)
    return d["panels"][:i], d["panels"][i + 1:]


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
    def test_dashboard_metrics_all_in_samples(self):
        r = Run(load_dashboard(), samples())
        self.assertEqual(r.rc, 0, r.err)
        self.assertIn("are all in", r.out)

    def test_server_sample_alone_lacks_the_worker_names(self):
        r = Run(load_dashboard(), sample())
        self.assertEqual(r.rc, 1)
        self.assertIn("sparkps_trainer_step_phase_seconds_total", r.err)
        self.assertIn('panel "Network wait share per worker"', r.err)
        self.assertNotIn("sparkps_worker_loss", r.err)

    def test_dashboard_uses_every_contract_metric(self):
        uses, problems = check_grafana.dashboard_uses(load_dashboard())
        self.assertEqual(problems, [])
        for text in samples():
            have, hist = check_grafana.exposed(text)
            contract = {n for n in have if not n.endswith(("_sum", "_count"))}
            self.assertEqual(contract - set(uses) - TRAINING_ROW_DUPLICATES,
                             set())

    def test_dashboard_shape(self):
        d = load_dashboard()
        names = {v["name"] for v in d["templating"]["list"]}
        self.assertTrue({"datasource", "job", "instance", "worker_job",
                         "worker"} <= names)
        self.assertGreaterEqual(d["schemaVersion"], 36)
        servers, workers = split_rows(d)
        for p in servers:
            for t in p.get("targets", []):
                self.assertIn('instance=~"$instance"', t["expr"], p["title"])
                self.assertIn('job=~"$job"', t["expr"], p["title"])
                self.assertNotIn("sparkps_trainer_", t["expr"], p["title"])
        # the workers are another scrape job: $job/$instance (from
        # sparkps_shard_info) would select none of their series
        for p in workers:
            self.assertTrue(p.get("targets"), p["title"])
            for t in p["targets"]:
                self.assertIn('job=~"$worker_job"', t["expr"], p["title"])
                self.assertIn("sparkps_trainer_", t["expr"], p["title"])
                self.assertNotIn("$instance", t["expr"], p["title"])
                self.assertIn("{{worker}}" if "by (phase)" not in t["expr"]
                              else "{{phase}}", t["legendFormat"], p["title"])
        titles = " ".join(p["title"] for p in servers).lower()
        for want in ("samples/s", "loss", "accuracy", "requests/s",
                     "latency", "bytes/s", "errors/s", "optimizer",
                     "table memory", "live workers", "staleness"):
            self.assertIn(want, titles)
        titles = " ".join(p["title"] for p in workers).lower()
        for want in ("network wait share", "step time by phase",
                     "step duration", "samples/s", "retries"):
            self.assertIn(want, titles)
        wait = next(p for p in workers if p["title"].startswith("Network"))
        defaults = wait["fieldConfig"]["defaults"]
        self.assertEqual((defaults["unit"], defaults["min"], defaults["max"]),
                         ("percentunit", 0, 1))

    def test_dashboard_layout(self):
        d = load_dashboard()
        panels = list(d["panels"])
        for p in d["panels"]:
            panels += p.get("panels", [])
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        cells = {}
        for p in panels:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells,
                                     f'{p["title"]} overlaps '
                                     f'{cells.get((x, y))}')
                    cells[(x, y)] = p["title"]
        shards = next(p for p in panels if p["title"] == "Shards")
        row = next(p for p in panels if p["title"] == WORKERS_ROW)
        self.assertEqual(row["gridPos"]["y"],
                         shards["gridPos"]["y"] + shards["gridPos"]["h"])

    @unittest.skipUnless(shutil.which("promtool"), "promtool not on PATH")
    def test_samples_are_valid_exposition(self):
        for text in samples():
            r = subprocess.run(["promtool", "check", "metrics"], input=text,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    @unittest.skipUnless(shutil.which("promtool"), "promtool not on PATH")
    def test_dashboard_queries_parse(self):
        d = load_dashboard()
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
        r = Run(load_dashboard(),
                [without(sample(), "sparkps_worker_loss"), worker_sample()])
        self.assertEqual(r.rc, 1)
        self.assertIn("sparkps_worker_loss", r.err)
        self.assertIn('panel "Loss"', r.err)

    def test_declared_family_without_series_counts(self):
        text = without(sample(), "sparkps_worker_loss", keep_type=True)
        self.assertIn("# TYPE sparkps_worker_loss gauge", text)
        self.assertEqual(Run(load_dashboard(), [text, worker_sample()]).rc, 0)

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

    def test_name_only_in_the_second_file(self):
        d = dashboard("rate(a_total[1m])", "b_seconds_bucket")
        two = ["# TYPE a_total counter\na_total 1\n",
               "# TYPE b_seconds histogram\n"]
        r = Run(d, two)
        self.assertEqual(r.rc, 0, r.err)
        self.assertIn("are all in", r.out)
        self.assertIn(" + ", r.out)  # names both files
        r = Run(d, two[0])
        self.assertEqual(r.rc, 1)
        self.assertIn("b_seconds_bucket", r.err)

    def test_name_in_neither_file(self):
        r = Run(dashboard("a_total", "nowhere_total"),
                ["a_total 1\n", "b 2\n"])
        self.assertEqual(r.rc, 1)
        self.assertRegex(r.err, r"missing from \S*m0\.txt \+ \S*m1\.txt: "
                                r"nowhere_total; used by panel \"p1\"")
        self.assertNotIn("a_total", r.err)

    def test_histogram_hint_across_files(self):
        r = Run(dashboard("lat_seconds"),
                ["x 1\n", "# TYPE lat_seconds histogram\n"])
        self.assertEqual(r.rc, 1)
        self.assertIn("is a histogram", r.err)

    def test_stdin_with_a_file(self):
        r = Run(load_dashboard(), sample(), stdin=worker_sample())
        self.assertEqual(r.rc, 0, r.err)
        self.assertIn("+ stdin", r.out)

    def test_stdin_at_most_once(self):
        r = subprocess.run([sys.executable, CHECK, DASHBOARD, "-", "-"],
                           input="", capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("once", r.stderr)

    def test_no_metrics_file_is_usage(self):
        r = subprocess.run([sys.executable, CHECK, DASHBOARD],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)

    def test_unreadable_input(self):
        self.assertEqual(Run("{not json", sample()).rc, 2)
        r = subprocess.run([sys.executable, CHECK, DASHBOARD, "/nonexistent"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent", r.stderr)
        r = subprocess.run([sys.executable, CHECK, DASHBOARD, SAMPLE,
                            "/nonexistent"], capture_output=True, text=True)
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
