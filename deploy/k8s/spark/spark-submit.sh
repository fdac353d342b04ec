#!/usr/bin/env bash
# Submits a PySpark application to Kubernetes (cluster mode) with one GPU per
# executor, against the ps-server shards of deploy/k8s/ (apply those first).
#
#   deploy/k8s/spark/spark-submit.sh [APP [ARGS...]]
#
# APP defaults to local:///opt/sparkps/examples/train_blobs.py, which is in
# the image (local:// = a path inside the driver's container). Settings, from
# the environment:
#   K8S_API          API server URL (default: kubectl's current context)
#   NAMESPACE        sparkps
#   IMAGE            sparkps:0.1.0, the image of deploy/docker/ in a
#                    registry the cluster can pull from
#   EXECUTORS        2: executors = GPUs = ps-workers (one barrier task each)
#   EXECUTOR_MEMORY  8g
#   SPARKPS_SERVERS  the shards in shard order (default: the ps-client
#                    ConfigMap, read with kubectl); SPARKPS_CONSISTENCY too
#   SPARK_SUBMIT     spark-submit (from PySpark 3.5.7: pip install pyspark)
#   DRY_RUN=1        print the command instead of running it
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
NAMESPACE=${NAMESPACE:-sparkps}
IMAGE=${IMAGE:-sparkps:0.1.0}
EXECUTORS=${EXECUTORS:-2}
EXECUTOR_MEMORY=${EXECUTOR_MEMORY:-8g}
SPARK_SUBMIT=${SPARK_SUBMIT:-spark-submit}

from_kubectl() { # from_kubectl WHAT ARGS...: kubectl's answer, or a clear error
    local what=$1 out
    shift
    if ! command -v kubectl >/dev/null; then
        echo "spark-submit.sh: set $what (kubectl is not installed to look it up)" >&2
        exit 2
    fi
    if ! out=$(kubectl "$@") || [ -z "$out" ]; then
        echo "spark-submit.sh: set $what (kubectl $* gave nothing)" >&2
        exit 2
    fi
    echo "$out"
}

K8S_API=${K8S_API:-$(from_kubectl K8S_API config view --minify -o 'jsonpath={.clusters[0].cluster.server}')}
SPARKPS_SERVERS=${SPARKPS_SERVERS:-$(from_kubectl SPARKPS_SERVERS -n "$NAMESPACE" get configmap ps-client -o 'jsonpath={.data.SPARKPS_SERVERS}')}
SPARKPS_CONSISTENCY=${SPARKPS_CONSISTENCY:-$(from_kubectl SPARKPS_CONSISTENCY -n "$NAMESPACE" get configmap ps-client -o 'jsonpath={.data.SPARKPS_CONSISTENCY}')}
app=${1:-local:///opt/sparkps/examples/train_blobs.py}
[ $# -eq 0 ] || shift

cmd=(
    "$SPARK_SUBMIT"
    --master "k8s://$K8S_API"
    --deploy-mode cluster
    --name sparkps
    --conf "spark.kubernetes.namespace=$NAMESPACE"
    --conf "spark.kubernetes.container.image=$IMAGE"
    --conf spark.kubernetes.authenticate.driver.serviceAccountName=spark
    --conf "spark.kubernetes.executor.podTemplateFile=$here/executor-pod-template.yaml"
    --conf spark.kubernetes.executor.podTemplateContainerName=spark-kubernetes-executor
    # One executor per GPU, one task slot per executor: the seed talk's
    # setting; the task slot, not Spark, decides what runs beside the worker.
    --conf "spark.executor.instances=$EXECUTORS"
    --conf spark.executor.cores=1
    --conf spark.task.cpus=1
    --conf "spark.executor.memory=$EXECUTOR_MEMORY"
    --conf spark.executor.resource.gpu.amount=1
    --conf spark.executor.resource.gpu.vendor=nvidia.com
    --conf spark.executor.resource.gpu.discoveryScript=/opt/sparkps/bin/getGpusResources.sh
    --conf spark.task.resource.gpu.amount=1
    # A barrier stage needs all its tasks at once: a fixed executor count.
    --conf spark.dynamicAllocation.enabled=false
    --conf spark.pyspark.python=/opt/venv/bin/python
    --conf "spark.kubernetes.driverEnv.SPARKPS_SERVERS=$SPARKPS_SERVERS"
    --conf "spark.kubernetes.driverEnv.SPARKPS_CONSISTENCY=$SPARKPS_CONSISTENCY"
    # CurveZMQ keys for the driver's ps-ctl (status, export): the Secret's
    # files, named by variables (the executors get theirs from the pod
    # template); sparkps copies the secret key into a private file first.
    --conf spark.kubernetes.driver.secrets.ps-curve-client=/etc/sparkps/curve-client
    --conf spark.kubernetes.driverEnv.SPARKPS_CURVE_SECRET_KEY=/etc/sparkps/curve-client/client.key
    --conf spark.kubernetes.driverEnv.SPARKPS_CURVE_SERVER_KEY=/etc/sparkps/curve-client/server.pub
    "$app" "$@"
)
if [ -n "${DRY_RUN:-}" ]; then
    printf '%q ' "${cmd[@]}"
    echo
    exit 0
fi
exec "${cmd[@]}"
