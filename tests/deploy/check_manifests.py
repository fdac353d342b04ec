"""What schemas cannot see in deploy/: the files agreeing with each other.

    python3 tests/deploy/check_manifests.py k8s
    python3 tests/deploy/check_manifests.py yarn deploy/yarn/sparkps-service.json
    python3 tests/deploy/check_manifests.py spark-conf deploy/yarn/spark-defaults.conf
    python3 tests/deploy/check_manifests.py prometheus-k8s IN.yml OUT.yml

Each command prints one line per fact it checked and exits 1 at the first
one that does not hold, saying which file and what to change. Run from the
repository root (tests/deploy/check.sh does). Needs PyYAML (in .venv).

prometheus-k8s exists because Debian's promtool is built without Kubernetes
service discovery: it checks the kubernetes_sd_configs blocks of IN against
Prometheus' documented fields and the meta labels each role provides, then
writes OUT with those blocks replaced by an empty static list, for promtool
to check everything else (relabel rules, scrape settings).
"""
import json
import os
import re
import sys

import yaml

K8S = "deploy/k8s"
MANIFESTS = ["00-namespace.yaml", "10-config.yaml", "20-curve-secret.yaml", "30-service.yaml",
             "40-statefulset.yaml", "50-pdb.yaml", "60-networkpolicy.yaml", "70-spark-rbac.yaml"]
EXECUTOR_TEMPLATE = f"{K8S}/spark/executor-pod-template.yaml"
SUBMIT = f"{K8S}/spark/spark-submit.sh"
DOCKERFILE = "deploy/docker/Dockerfile"
YARNFILE = "deploy/yarn/sparkps-service.json"


def fail(msg):
    print(f"check_manifests: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print(f"  ok: {msg}")


def expect(cond, good, bad):
    if not cond:
        fail(bad)
    ok(good)


def load_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


def load_yaml(path, many=False):
    try:
        with open(path) as fh:
            return list(yaml.safe_load_all(fh)) if many else yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as e:
        fail(f"{path}: {e}")


def load_k8s():
    """{(kind, name): (file, object)} of every manifest, in apply order."""
    objs = {}
    for f in MANIFESTS + ["spark/executor-pod-template.yaml"]:
        path = f"{K8S}/{f}"
        for doc in load_yaml(path, many=True):
            if doc:
                objs[(doc["kind"], doc["metadata"]["name"])] = (path, doc)
    return objs


def shell_default(path, var):
    """The default of VAR=${VAR:-default} in a shell script."""
    m = re.search(rf"^{var}=\$\{{{var}:-([^}}]*)\}}", open(path).read(), re.M)
    if not m:
        fail(f"{path}: no {var}=${{{var}:-...}} default")
    return m.group(1)


def submit_conf(key):
    m = re.search(rf"--conf \"?{re.escape(key)}=([^\s\"]+)", open(SUBMIT).read())
    if not m:
        fail(f"{SUBMIT}: no --conf {key}=...")
    return m.group(1)


def dockerfile_uid():
    m = re.search(r"^USER (\d+)", open(DOCKERFILE).read(), re.M)
    if not m:
        fail(f"{DOCKERFILE}: no numeric USER")
    return int(m.group(1))


def check_secret_files(sts, c, env, get):
    """The key and token files the shards' SPARKPS_* variables name come
    from Secret volumes of 20-curve-secret.yaml, mounted 0440 (ps-server
    refuses a secret file others may read), holding those keys."""
    vols = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    for var in ("SPARKPS_CURVE_SECRET_KEY", "SPARKPS_CURVE_ALLOW", "SPARKPS_HTTP_TOKEN_FILE"):
        path = env.get(var) or ""
        vol = vols.get(mounts.get(os.path.dirname(path), ""), {})
        sec = vol.get("secret", {})
        data = get("Secret", sec.get("secretName", "?")).get("stringData", {}) if sec else {}
        expect(sec and not sec.get("optional") and sec.get("defaultMode") == 0o440
               and os.path.basename(path) in data,
               f"{var}={path} is key {os.path.basename(path)} of Secret "
               f"{sec.get('secretName')} (mode 0440)",
               f"40-statefulset.yaml: {var} ({path!r}) must name a key of a Secret of "
               "20-curve-secret.yaml mounted at its directory with defaultMode 0440, not optional")


def arg_after(args, flag):
    return args[args.index(flag) + 1] if flag in args[:-1] else None


def check_k8s():
    objs = load_k8s()

    def get(kind, name):
        if (kind, name) not in objs:
            fail(f"{K8S}: no {kind} {name}")
        return objs[(kind, name)][1]

    ns = [n for (k, n) in objs if k == "Namespace"]
    expect(len(ns) == 1, f"one Namespace, {ns}", f"{K8S}: want exactly one Namespace, got {ns}")
    ns = ns[0]
    for (kind, name), (path, o) in objs.items():
        if kind not in ("Namespace", "Pod") and o["metadata"].get("namespace") != ns:
            fail(f"{path}: {kind} {name} is not in namespace {ns}")
    ok(f"every object is in namespace {ns}")

    sts, svc = get("StatefulSet", "ps"), get("Service", "ps")
    cfg, client = get("ConfigMap", "ps-config")["data"], get("ConfigMap", "ps-client")["data"]
    labels = sts["spec"]["template"]["metadata"]["labels"]

    def selects(selector):
        return all(labels.get(k) == v for k, v in selector.items())

    expect(selects(sts["spec"]["selector"]["matchLabels"]), "StatefulSet selector matches its pods",
           "40-statefulset.yaml: spec.selector does not match the pod template's labels")
    expect(svc["spec"].get("clusterIP") == "None" and sts["spec"]["serviceName"] == "ps"
           and selects(svc["spec"]["selector"]),
           "Service ps is headless, the StatefulSet's serviceName, and selects its pods",
           "30-service.yaml/40-statefulset.yaml: Service ps must be headless (clusterIP: None), "
           "named by the StatefulSet's serviceName, and select its pods")
    for kind, name, sel in (("PodDisruptionBudget", "ps", lambda o: o["spec"]["selector"]["matchLabels"]),
                            ("NetworkPolicy", "ps", lambda o: o["spec"]["podSelector"]["matchLabels"])):
        expect(selects(sel(get(kind, name))), f"{kind} {name} selects the shards",
               f"{objs[(kind, name)][0]}: its selector does not match the shards' labels")

    replicas, shards = sts["spec"]["replicas"], int(cfg["SPARKPS_SHARDS"])
    expect(replicas == shards, f"StatefulSet replicas {replicas} = SPARKPS_SHARDS {shards}",
           f"40-statefulset.yaml replicas is {replicas} but 10-config.yaml SPARKPS_SHARDS is "
           f"{shards}: they must be equal")

    c = sts["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    args = c["args"]
    expect(args[0] == "ps-server" and arg_after(args, "--listen") == f"tcp://0.0.0.0:{ports['zmq']}"
           and "--insecure" not in args and arg_after(args, "--http") == f"0.0.0.0:{ports['http']}",
           f"ps-server listens on port zmq {ports['zmq']} (no --insecure) and serves HTTP on "
           f"port http {ports['http']}",
           f"40-statefulset.yaml: args {args} must be ps-server --listen tcp://0.0.0.0:<zmq port> "
           "--http 0.0.0.0:<http port>, without --insecure (CurveZMQ)")
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    check_secret_files(sts, c, env, get)
    expect(env.get("SPARKPS_SHARD_FROM_HOSTNAME") == "true", "shard index from the pod's host name",
           "40-statefulset.yaml: set SPARKPS_SHARD_FROM_HOSTNAME=true (the shard is the ordinal)")
    for probe in ("readinessProbe", "livenessProbe"):
        port = c[probe]["httpGet"]["port"]
        expect(port in ports or port in ports.values(), f"{probe} uses a container port ({port})",
               f"40-statefulset.yaml: {probe} port {port} is none of {ports}")
    ann = sts["spec"]["template"]["metadata"]["annotations"]
    expect(ann.get("prometheus.io/scrape") == "true" and int(ann["prometheus.io/port"]) == ports["http"]
           and ann.get("prometheus.io/path") == "/metrics",
           "Prometheus annotations point at the http port's /metrics",
           "40-statefulset.yaml: prometheus.io/* annotations must be scrape \"true\", the http "
           "port and /metrics")
    svc_ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    expect(svc_ports == ports, f"Service ports {svc_ports} = container ports",
           f"30-service.yaml ports {svc_ports} differ from the container's {ports}")
    np_ports = sorted(p["port"] for r in get("NetworkPolicy", "ps")["spec"]["ingress"]
                      for p in r["ports"])
    expect(np_ports == sorted(ports.values()), f"NetworkPolicy opens {np_ports}",
           f"60-networkpolicy.yaml opens {np_ports}, the shards listen on {sorted(ports.values())}")

    want = ",".join(f"tcp://ps-{i}.ps.{ns}.svc.cluster.local:{ports['zmq']}" for i in range(replicas))
    expect(client["SPARKPS_SERVERS"] == want, f"ps-client SPARKPS_SERVERS lists the {replicas} shards in order",
           f"10-config.yaml ps-client SPARKPS_SERVERS is {client['SPARKPS_SERVERS']!r}, want {want!r}")
    expect(client["SPARKPS_CONSISTENCY"] == cfg["SPARKPS_CONSISTENCY"],
           f"clients and servers agree on consistency {cfg['SPARKPS_CONSISTENCY']}",
           "10-config.yaml: SPARKPS_CONSISTENCY differs between ps-config and ps-client")

    uid = dockerfile_uid()
    for (kind, name), (path, o) in objs.items():
        if kind in ("StatefulSet", "Pod"):
            spec = o["spec"]["template"]["spec"] if kind == "StatefulSet" else o["spec"]
            expect(spec["securityContext"].get("runAsUser") == uid,
                   f"{kind} {name} runs as the image's user {uid}",
                   f"{path}: runAsUser must be the Dockerfile's USER {uid}")

    pod = get("Pod", "sparkps-executor-template")
    name = submit_conf("spark.kubernetes.executor.podTemplateContainerName")
    ex = [x for x in pod["spec"]["containers"] if x["name"] == name]
    expect(len(ex) == 1, f"executor template has the container {name} spark-submit.sh names",
           f"{EXECUTOR_TEMPLATE}: no container named {name} (spark-submit.sh's "
           "podTemplateContainerName)")
    gpus = ex[0]["resources"]["limits"].get("nvidia.com/gpu")
    want_gpus = int(submit_conf("spark.executor.resource.gpu.amount"))
    expect(gpus == want_gpus and submit_conf("spark.executor.resource.gpu.vendor") == "nvidia.com",
           f"executor requests nvidia.com/gpu: {gpus}, as spark-submit.sh's gpu amount",
           f"{EXECUTOR_TEMPLATE}: limits nvidia.com/gpu is {gpus}; spark-submit.sh asks "
           f"{want_gpus} of vendor nvidia.com: they must agree")
    expect(submit_conf("spark.task.resource.gpu.amount") == "1" and
           submit_conf("spark.executor.cores") == "1", "one task and one GPU per executor",
           f"{SUBMIT}: spark.task.resource.gpu.amount and spark.executor.cores must be 1")
    script = submit_conf("spark.executor.resource.gpu.discoveryScript")
    expect(script in open(DOCKERFILE).read(), f"discovery script {script} is installed by the Dockerfile",
           f"{SUBMIT}: discoveryScript {script} is not a path the Dockerfile installs")
    expect(shell_default(SUBMIT, "NAMESPACE") == ns, f"spark-submit.sh's namespace is {ns}",
           f"{SUBMIT}: NAMESPACE default must be {ns}")

    image = c["image"]
    others = {"executor template": ex[0]["image"], "spark-submit.sh": shell_default(SUBMIT, "IMAGE"),
              "YARN service": load_json(YARNFILE)["components"][0]["artifact"]["id"]}
    bad = {k: v for k, v in others.items() if v != image}
    expect(not bad, f"every deployment uses image {image}",
           f"image tags differ from the StatefulSet's {image}: {bad}")


def check_yarn(path):
    svc = load_json(path)
    for key in ("name", "version", "components"):
        expect(svc.get(key), f"service has {key}", f"{path}: the service needs a non-empty {key!r}")
    expect(re.fullmatch(r"[a-z][a-z0-9-]{0,62}", svc["name"]) is not None,
           f"service name {svc['name']!r} is a DNS label (Registry DNS)",
           f"{path}: name must be lower-case letters, digits and '-', at most 63")
    for comp in svc["components"]:
        n = comp.get("name", "")
        expect(re.fullmatch(r"[a-z][a-z0-9-]{0,43}", n) is not None,
               f"component {n!r} has a valid name", f"{path}: component name {n!r} must be a DNS "
               "label of at most 44 characters")
        count = comp.get("number_of_containers")
        expect(isinstance(count, int) and count >= 1, f"{n}: number_of_containers {count}",
               f"{path}: component {n} needs number_of_containers >= 1")
        res = comp.get("resource", {})
        expect("profile" in res or (isinstance(res.get("cpus"), int) and str(res.get("memory", "")).isdigit()),
               f"{n}: resource cpus {res.get('cpus')} memory {res.get('memory')} MB",
               f"{path}: component {n} needs resource.cpus (integer) and resource.memory (MB, "
               "digits) or a profile")
        art = comp.get("artifact", {})
        expect(art.get("id") and art.get("type", "DOCKER") in ("DOCKER", "TARBALL", "SERVICE"),
               f"{n}: artifact {art.get('type', 'DOCKER')} {art.get('id')}",
               f"{path}: component {n} needs artifact.id and type DOCKER, TARBALL or SERVICE")
        cmd = comp.get("launch_command", "")
        expect("ps-server" in cmd and "--shard ${COMPONENT_ID}" in cmd,
               f"{n}: launch_command runs ps-server with --shard ${{COMPONENT_ID}}",
               f"{path}: component {n}'s launch_command must run ps-server with --shard "
               "${COMPONENT_ID} (the instance number, 0..N-1)")
        env = comp.get("configuration", {}).get("env", {})
        expect(env.get("SPARKPS_SHARDS") == str(count),
               f"{n}: SPARKPS_SHARDS {env.get('SPARKPS_SHARDS')} = number_of_containers",
               f"{path}: component {n} env SPARKPS_SHARDS must equal number_of_containers {count}")
        limit = int(env.get("SPARKPS_MEMORY_LIMIT", "0"))
        expect(0 < limit < int(res.get("memory", "0")) * 2**20,
               f"{n}: SPARKPS_MEMORY_LIMIT {limit} below the container's memory",
               f"{path}: component {n} env SPARKPS_MEMORY_LIMIT must be set below resource.memory")
        rc = comp.get("readiness_check", {})
        expect(rc.get("type") in ("DEFAULT", "HTTP", "PORT"), f"{n}: readiness check {rc.get('type')}",
               f"{path}: component {n} readiness_check.type must be DEFAULT, HTTP or PORT")
        for con in comp.get("placement_policy", {}).get("constraints", []):
            expect(con.get("type") in ("AFFINITY", "ANTI_AFFINITY", "AFFINITY_WITH_CARDINALITY")
                   and con.get("scope") in ("NODE", "RACK"),
                   f"{n}: placement {con.get('type')} per {con.get('scope')}",
                   f"{path}: component {n} placement constraints need a valid type and scope")


def check_spark_conf(path):
    conf = {}
    for i, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].startswith("spark."):
            fail(f"{path}:{i}: want 'spark.KEY VALUE', got {line!r}")
        if parts[0] in conf:
            fail(f"{path}:{i}: {parts[0]} set twice")
        conf[parts[0]] = parts[1]
    ok(f"{len(conf)} settings, one 'spark.KEY VALUE' per line, none twice")
    for key, want in (("spark.master", "yarn"), ("spark.executor.cores", "1"),
                      ("spark.executor.resource.gpu.amount", "1"),
                      ("spark.task.resource.gpu.amount", "1"),
                      ("spark.dynamicAllocation.enabled", "false")):
        expect(conf.get(key) == want, f"{key} {want}", f"{path}: want {key} {want}, got {conf.get(key)}")
    expect(conf.get("spark.executor.resource.gpu.discoveryScript", "").endswith("getGpusResources.sh"),
           "the discovery script is deploy/spark/getGpusResources.sh",
           f"{path}: spark.executor.resource.gpu.discoveryScript must be getGpusResources.sh")


# Prometheus' kubernetes_sd_config fields, and the meta label prefixes each
# role provides (https://prometheus.io/docs/prometheus/latest/configuration/configuration/#kubernetes_sd_config).
SD_FIELDS = {"api_server", "role", "kubeconfig_file", "namespaces", "selectors", "attach_metadata",
             "basic_auth", "authorization", "oauth2", "proxy_url", "no_proxy", "proxy_from_environment",
             "proxy_connect_header", "follow_redirects", "enable_http2", "tls_config"}
ROLE_META = {
    "node": ["node_"],
    "service": ["namespace", "service_"],
    "pod": ["namespace", "pod_"],
    "endpoints": ["namespace", "endpoints_", "endpoint_", "service_", "pod_", "node_"],
    "endpointslice": ["namespace", "endpointslice_", "service_", "pod_", "node_"],
    "ingress": ["namespace", "ingress_"],
}


def check_prometheus_k8s(src, dst):
    cfg = load_yaml(src)
    for job in cfg.get("scrape_configs", []):
        name = job.get("job_name")
        sds = job.pop("kubernetes_sd_configs", None)
        if sds is None:
            continue
        roles = set()
        for sd in sds:
            extra = set(sd) - SD_FIELDS
            expect(not extra, f"{name}: kubernetes_sd_configs fields {sorted(sd)}",
                   f"{src}: job {name}: unknown kubernetes_sd_configs fields {sorted(extra)}")
            expect(sd.get("role") in ROLE_META, f"{name}: role {sd.get('role')}",
                   f"{src}: job {name}: role must be one of {sorted(ROLE_META)}")
            roles.add(sd["role"])
            nss = sd.get("namespaces", {})
            expect(set(nss) <= {"names", "own_namespace"} and isinstance(nss.get("names", []), list),
                   f"{name}: namespaces {nss}", f"{src}: job {name}: namespaces takes names (a list) "
                   "and own_namespace")
        prefixes = [p for r in roles for p in ROLE_META[r]]
        for rule in job.get("relabel_configs", []):
            for label in rule.get("source_labels", []):
                if label.startswith("__meta_kubernetes_"):
                    rest = label[len("__meta_kubernetes_"):]
                    expect(any(rest.startswith(p) for p in prefixes),
                           f"{name}: {label} exists for role {'/'.join(sorted(roles))}",
                           f"{src}: job {name}: {label} is not a meta label of role(s) {sorted(roles)}")
        job["static_configs"] = [{"targets": []}]
    with open(dst, "w") as fh:
        yaml.safe_dump(cfg, fh)


def main():
    cmd, args = sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2:]
    if cmd == "k8s" and not args:
        check_k8s()
    elif cmd == "yarn" and len(args) == 1:
        check_yarn(args[0])
    elif cmd == "spark-conf" and len(args) == 1:
        check_spark_conf(args[0])
    elif cmd == "prometheus-k8s" and len(args) == 2:
        check_prometheus_k8s(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
