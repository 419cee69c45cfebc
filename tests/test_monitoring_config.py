"""monitoring/: Prometheus config, alert rules and their promtool unit tests, the Grafana
dashboard and provisioning; every PromQL query uses only metric names the app exposes.

The PromQL helpers here (``dashboard_queries``, ``alert_rules``, ``metric_names``,
``comparison_sides``) are reused by tests/e2e/test_prometheus.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]
MON = ROOT / "monitoring"
DASHBOARD = MON / "grafana" / "dashboards" / "houseprice.json"
ALERTS = MON / "alerts.yml"

EXPECTED_ALERTS = {
    "HousepriceDown",
    "HighErrorRatio",
    "HighLatencyP99",
    "FeatureDrift",
    "PredictionDrift",
    "ModelNotReady",
    "LiveRMSEHigh",
}

# --- PromQL helpers -----------------------------------------------------------------------

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)")


def grafana_to_promql(expr: str, rate_interval: str = "1m") -> str:
    """A dashboard query as Prometheus runs it: Grafana's interval variables substituted, and
    the template variables at their "All" value."""
    for var in ("$__rate_interval", "$__interval", "$__range"):
        expr = expr.replace(var, rate_interval)
    for var in ("$job", "$instance", "$model_version"):
        expr = expr.replace(var, ".*")
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # range durations
    s = _GROUPING.sub(" ", s)  # by (...), on (...) label lists
    names = set()
    for m in _IDENT.finditer(s):
        word = m.group(0)
        rest = s[m.end() :].lstrip()
        before = s[: m.start()]
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue
        if before and (before[-1].isdigit() or before[-1] == "."):  # 1e3, 250ms...
            continue
        names.add(word)
    return names


def comparison_sides(expr: str) -> list[str]:
    """Split an alert expression at its top-level comparisons and ``and``/``or``/``unless``.

    An alert expression returns data only while it fires; its *sides* (the signal and the
    threshold) must return data all the time, which is what the end-to-end test checks.
    Comparisons against a bare number leave only the other side.
    """
    parts: list[str] = []
    depth, start, i = 0, 0, 0
    s = expr
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == '"':
            i = s.index('"', i + 1)
        elif depth == 0:
            m = _COMPARISON.match(s, i)
            word = re.match(r"\b(and|or|unless)\b", s[i:])
            if m or (word and (i == 0 or not (s[i - 1].isalnum() or s[i - 1] == "_"))):
                length = m.end() - i if m else word.end()  # type: ignore[union-attr]
                parts.append(s[start:i])
                i += length
                if m and s[i : i + 4] == "bool":
                    i += 4
                start = i
                continue
        i += 1
    parts.append(s[start:])
    out = [p.strip() for p in parts]
    return [p for p in out if p and not re.fullmatch(r"[0-9.e+-]+", p)]


def dashboard_queries(dashboard: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """``(panel title, expr)`` for every target of every panel, rows included."""
    d = dashboard if dashboard is not None else json.loads(DASHBOARD.read_text())
    out = []
    stack = list(d["panels"])
    while stack:
        p = stack.pop(0)
        stack.extend(p.get("panels", []))
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    return out


def alert_rules() -> dict[str, dict[str, Any]]:
    """Alert name -> rule, from monitoring/alerts.yml."""
    doc = yaml.safe_load(ALERTS.read_text())
    return {r["alert"]: r for g in doc["groups"] for r in g["rules"] if "alert" in r}


_SUFFIXES = ("_bucket", "_count", "_sum", "_created", "_total")


def contract_metric_names() -> set[str]:
    """The Contract 2 table of docs/ARCHITECTURE.md, as exposed names (histogram series and
    the counter ``_total`` suffix included)."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## Contract 2", 1)[1]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `houseprice_"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        kind = cells[1]
        for name in re.findall(r"`(houseprice_[a-z0-9_]+)`", cells[0]):
            names.add(name)
            if kind.startswith("histogram"):
                names.update(name + s for s in ("_bucket", "_count", "_sum"))
            if kind.startswith("counter") and not name.endswith("_total"):
                names.add(name + "_total")
    return names


def process_metric_names() -> set[str]:
    """What prometheus-client's default process and platform collectors expose here."""
    from prometheus_client import REGISTRY, generate_latest

    text = generate_latest(REGISTRY).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()}


# --- promtool -----------------------------------------------------------------------------


def _promtool(*args: str, cwd: Path = MON) -> subprocess.CompletedProcess[str]:
    exe = require_tool("promtool")
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_check_config() -> None:
    r = _promtool("check", "config", "prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_check_rules() -> None:
    r = _promtool("check", "rules", "alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in r.stdout


def test_promtool_test_rules() -> None:
    r = _promtool("test", "rules", "alerts.test.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


@pytest.mark.parametrize(
    ("old", "new", "alert"),
    [
        ('feature!="prediction"', 'feature=~".+"', "FeatureDrift"),  # would page for the output
        ("> 0.05", "> 0.005", "HighErrorRatio"),  # would fire on 1% errors
        (">= 20", ">= 1", "LiveRMSEHigh"),  # would fire on a handful of sales
        # would page for the shadow model's drift
        ('feature!="prediction", role!="shadow"', 'feature!="prediction"', "FeatureDrift"),
        ('feature="prediction", role!="shadow"', 'feature="prediction"', "PredictionDrift"),
    ],
)
def test_promtool_unit_tests_catch_a_broken_rule(
    tmp_path: Path, old: str, new: str, alert: str
) -> None:
    """The unit tests have teeth: each of these plausible mistakes makes them fail."""
    text = ALERTS.read_text()
    assert text.count(old) == 1, f"{old!r} not found once in alerts.yml"
    (tmp_path / "alerts.yml").write_text(text.replace(old, new))
    shutil.copy(MON / "alerts.test.yml", tmp_path / "alerts.test.yml")
    r = _promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert r.returncode != 0
    assert f"alertname: {alert}" in r.stdout + r.stderr


def test_promtool_unit_tests_catch_a_live_rmse_rule_that_pages_for_the_shadow(
    tmp_path: Path,
) -> None:
    """LiveRMSEHigh without its ``role!="shadow"`` selectors fires for the shadow's errors."""
    text = ALERTS.read_text()
    assert text.count('{role!="shadow"}') == 3
    (tmp_path / "alerts.yml").write_text(text.replace('{role!="shadow"}', ""))
    shutil.copy(MON / "alerts.test.yml", tmp_path / "alerts.test.yml")
    r = _promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert r.returncode != 0
    assert "alertname: LiveRMSEHigh" in r.stdout + r.stderr
    assert "live RMSE of model v4" in r.stdout + r.stderr  # the shadow's version, paged


def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """promtool parses each dashboard query, written as a recording rule."""
    rules = [
        {"record": f"dashboard:query:{i}", "expr": grafana_to_promql(expr)}
        for i, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = _promtool("check", "rules", str(path))
    assert r.returncode == 0, r.stdout + r.stderr


# --- the rule set -------------------------------------------------------------------------


def test_every_required_alert_is_defined_with_severity_and_summary() -> None:
    rules = alert_rules()
    assert set(rules) == EXPECTED_ALERTS
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert "{{" in rule["annotations"]["summary"] or name == "PredictionDrift", name


def test_drift_alerts_hold_for_ten_minutes_and_split_feature_from_prediction() -> None:
    rules = alert_rules()
    assert rules["FeatureDrift"]["for"] == "10m"
    assert 'feature!="prediction"' in rules["FeatureDrift"]["expr"]
    assert 'feature="prediction"' in rules["PredictionDrift"]["expr"]
    assert "1.5 *" in rules["LiveRMSEHigh"]["expr"]
    assert "[1h]" in rules["LiveRMSEHigh"]["expr"]


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    doc = yaml.safe_load((MON / "alerts.test.yml").read_text())
    firing: set[str] = set()
    silent: set[str] = set()
    for test in doc["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case["exp_alerts"] else silent).add(case["alertname"])
    assert firing == EXPECTED_ALERTS
    assert silent == EXPECTED_ALERTS


def test_prometheus_scrapes_the_api_and_loads_the_alerts() -> None:
    cfg = yaml.safe_load((MON / "prometheus.yml").read_text())
    assert cfg["rule_files"] == ["alerts.yml"]
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    targets = [t for sc in jobs["houseprice"]["static_configs"] for t in sc["targets"]]
    assert targets == ["api:8000"]
    assert jobs["houseprice"].get("metrics_path", "/metrics") == "/metrics"


# --- Grafana ------------------------------------------------------------------------------


def test_dashboard_uses_the_datasource_variable_and_filters_by_job_instance_version() -> None:
    """No hard-coded datasource uid: every panel and query takes ``$datasource``, a template
    variable of type prometheus; every series is filtered by ``$job`` and ``$instance``, and
    by ``$model_version`` where it has that label."""
    ds = yaml.safe_load((MON / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    d = json.loads(DASHBOARD.read_text())
    assert 36 <= d["schemaVersion"] <= 41
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert list(variables) == ["datasource", "job", "instance", "model_version"]
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    for name in ("job", "instance", "model_version"):
        v = variables[name]
        assert v["type"] == "query" and v["datasource"]["uid"] == "${datasource}"
        assert v["includeAll"] and v["allValue"] == ".*"
        assert "label_values(houseprice_model_info" in v["definition"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    assert source["uid"] not in DASHBOARD.read_text(), "a hard-coded datasource uid"
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)) and refs, p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            selectors = re.findall(r"\b(?:houseprice|process)_\w+\{([^}]*)\}", t["expr"])
            assert selectors, t["expr"]
            for labels in selectors:
                assert 'job=~"$job"' in labels and 'instance=~"$instance"' in labels, t["expr"]


def test_dashboard_draws_the_drift_threshold_from_the_metric_and_rates_per_minute() -> None:
    d = json.loads(DASHBOARD.read_text())
    drift = next(p for p in d["panels"] if p["title"].startswith("Drift score"))
    exprs = [t["expr"] for t in drift["targets"]]
    assert any("houseprice_drift_threshold" in e for e in exprs)
    assert "0.25" not in json.dumps(drift["fieldConfig"]), "a literal threshold"
    for p in d["panels"]:
        for t in p.get("targets", []):
            if t["expr"].endswith("* 60"):  # a per-second rate shown per minute
                assert p["fieldConfig"]["defaults"]["unit"] == "opm", p["title"]


def test_dashboard_panels_do_not_overlap() -> None:
    d = json.loads(DASHBOARD.read_text())
    cells: dict[tuple[int, int], str] = {}
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_dashboard_provider_points_at_the_dashboards_folder() -> None:
    prov = yaml.safe_load((MON / "grafana/provisioning/dashboards/houseprice.yml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file"
    compose = ROOT / "docker-compose.yml"
    if not compose.exists():
        pytest.skip("no docker-compose.yml to mount the dashboards")
    grafana = yaml.safe_load(compose.read_text())["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("./"))
    assert mounts["./monitoring/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./monitoring/grafana/provisioning/datasources"].endswith("/datasources")


def test_dashboard_covers_the_issue_panels() -> None:
    """The metrics the issue asks the dashboard to show each appear in some query."""
    used = set().union(*(metric_names(e) for _, e in dashboard_queries()))
    wanted = {
        "houseprice_http_requests_total",  # request rate, error ratio
        "houseprice_http_request_duration_seconds_bucket",  # p50/p90/p99
        "houseprice_http_requests_in_flight",
        "houseprice_predictions_total",  # by model version
        "houseprice_predicted_price_dollars_bucket",  # distribution
        "houseprice_drift_score",
        "houseprice_drift_detected",
        "houseprice_input_unknown_category_total",
        "houseprice_input_out_of_range_total",
        "houseprice_model_info",
        "houseprice_model_last_load_timestamp_seconds",
        "houseprice_feedback_abs_error_dollars_sum",  # live MAE
        "houseprice_feedback_squared_error_dollars_sum",  # live RMSE
        "houseprice_model_test_rmse_dollars",
    }
    assert wanted <= used, sorted(wanted - used)


# --- metric names -------------------------------------------------------------------------


def test_metric_names_parser_on_known_expressions() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route="/x"}[5m]))) '
        "> 1.5 * max by (v) (b) and on (v) c_total offset 5m >= 2e3"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c_total"}
    assert comparison_sides("sqrt(x / y) > 1.5 * max by (v) (z) and y >= 20") == [
        "sqrt(x / y)",
        "1.5 * max by (v) (z)",
        "y",
    ]
    assert comparison_sides('m{feature!="prediction"} == 1') == ['m{feature!="prediction"}']


def _all_queries() -> list[tuple[str, str]]:
    return dashboard_queries() + [(n, r["expr"]) for n, r in alert_rules().items()]


def test_every_query_uses_only_contract_metric_names() -> None:
    """Dashboard and alert queries name only metrics in the Contract 2 table, the process
    collector's, or Prometheus's own ``up``: the documented interface, not an accident."""
    exposed = contract_metric_names() | process_metric_names() | {"up"}
    for where, expr in _all_queries():
        unknown = metric_names(grafana_to_promql(expr)) - exposed
        assert not unknown, f"{where}: {sorted(unknown)} not in Contract 2"


def exercise_app(client: Any) -> None:
    """Requests that make the app expose every series: predictions (one and a batch), an
    unknown category, an out-of-range and a missing value, a refused house, feedback."""
    model = client.get("/model").json()
    house = {f["name"]: f["example"] for f in model["features"]}
    optional = next(f["name"] for f in model["features"] if not f["required"])
    cat = next(f["name"] for f in model["features"] if f["kind"] == "categorical")
    num = next(f for f in model["features"] if f["kind"] == "numeric" and f.get("max"))
    assert client.post("/predict", json=house).status_code == 200
    batch = {"instances": [house, {**house, optional: None}]}
    assert client.post("/predict", json=batch).status_code == 200
    unusual = {**house, cat: "Atlantis", num["name"]: num["max"] + 1}
    assert client.post("/predict", json=unusual).status_code == 200
    assert client.post("/predict", json={**house, cat: 12}).status_code == 422
    feedback = {
        "model_version": model["model_version"],
        "predicted_price": 150000.0,
        "actual_price": 165000.0,
    }
    assert client.post("/feedback", json=feedback).status_code == 200


def exposed_names(metrics_text: str) -> set[str]:
    """Sample names in a Prometheus text exposition."""
    return {
        line.split("{")[0].split(" ")[0]
        for line in metrics_text.splitlines()
        if line and not line.startswith("#")
    }


def test_every_query_uses_only_metrics_the_app_really_exposes(artifact_path: str) -> None:
    """The app's real ``/metrics`` output, after traffic, has every name the queries use."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    settings = Settings(model_path=artifact_path, drift_window=10, drift_min_samples=1)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        exercise_app(client)
        text = client.get("/metrics").text
    exposed = exposed_names(text) | {"up"}  # up: written by Prometheus for each target
    assert "houseprice_drift_score" in exposed and "houseprice_feedback_total" in exposed
    for where, expr in _all_queries():
        unknown = metric_names(grafana_to_promql(expr)) - exposed
        assert not unknown, f"{where}: {sorted(unknown)} not in the app's /metrics"


# --- Alertmanager ---------------------------------------------------------------------------


def test_amtool_check_config() -> None:
    """The Alertmanager config (route and the file receiver) as amtool validates it."""
    amtool = require_tool("amtool")
    r = subprocess.run(
        [amtool, "check-config", str(MON / "alertmanager.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout and " - 1 receivers" in r.stdout, r.stdout
    cfg = yaml.safe_load((MON / "alertmanager.yml").read_text())
    (receiver,) = cfg["receivers"]
    assert cfg["route"]["receiver"] == receiver["name"]
    assert receiver["webhook_configs"][0]["url"] == "http://alert-sink:9095/"


def test_amtool_refuses_a_route_to_an_undefined_receiver(tmp_path: Path) -> None:
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(
        (MON / "alertmanager.yml").read_text().replace("receiver: file", "receiver: x")
    )
    r = subprocess.run(
        [require_tool("amtool"), "check-config", str(broken)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode != 0 and "undefined receiver" in (r.stdout + r.stderr), r.stdout


def test_the_alert_sink_appends_each_notification_as_a_json_line(tmp_path: Path) -> None:
    import importlib.util
    import threading
    import urllib.request
    from http.server import ThreadingHTTPServer

    spec = importlib.util.spec_from_file_location("alert_sink", MON / "alert_sink.py")
    assert spec is not None and spec.loader is not None
    sink = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sink)
    out = tmp_path / "alerts.jsonl"
    server = ThreadingHTTPServer(("127.0.0.1", 0), sink.handler(out))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        for name in ("FeatureDrift", "HighErrorRate"):
            payload = {"status": "firing", "alerts": [{"labels": {"alertname": name}}]}
            req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 200
        bad = urllib.request.Request(url, data=b"not json", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(bad, timeout=10)
        assert info.value.code == 400
    finally:
        server.shutdown()
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["alerts"][0]["labels"]["alertname"] for x in lines] == [
        "FeatureDrift",
        "HighErrorRate",
    ]
