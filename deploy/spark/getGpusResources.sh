#!/usr/bin/env bash
# Spark GPU discovery script for sparkps executors:
#   --conf spark.executor.resource.gpu.discoveryScript=/path/getGpusResources.sh
# Prints one JSON object, the ResourceInformation Spark expects:
#   {"name": "gpu", "addresses": ["0", "1"]}
# The addresses are the GPU indices `nvidia-smi --query-gpu=index
# --format=csv,noheader` lists. When CUDA_VISIBLE_DEVICES is a list of
# indices (e.g. "2,3"), only those are reported (sparkps later sets
# CUDA_VISIBLE_DEVICES to the one address Spark gives each task, so the
# addresses stay physical indices); an empty CUDA_VISIBLE_DEVICES hides
# every GPU, as it does for CUDA, and so does "-1" (CUDA stops at the first
# invalid index); a list of UUIDs is not applied (a note on
# stderr). With no nvidia-smi, a failing one (no driver) or no GPU it
# prints an empty address list and still exits 0, so Spark always gets
# valid JSON: an executor that asks for GPUs then fails to start with
# Spark's own "less than what the user requested" error naming the
# resource, and one that asks for none is unaffected.
# Only bash builtins besides nvidia-smi, so it runs on minimal images.
set -u

emit() {
    local out="" a
    for a in "$@"; do
        out+="${out:+, }\"$a\""
    done
    printf '{"name": "gpu", "addresses": [%s]}\n' "$out"
}

if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "getGpusResources.sh: nvidia-smi not found; reporting no GPUs" >&2
    emit
    exit 0
fi
if ! listing=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>&1); then
    echo "getGpusResources.sh: nvidia-smi failed; reporting no GPUs: ${listing}" >&2
    emit
    exit 0
fi

# which indices CUDA_VISIBLE_DEVICES allows (unset: all)
filter=0
declare -A allowed=()
if [ "${CUDA_VISIBLE_DEVICES+set}" = set ]; then
    filter=1
    IFS=',' read -r -a cvd <<<"$CUDA_VISIBLE_DEVICES"
    for d in "${cvd[@]}"; do
        d=${d//[[:space:]]/}
        if [[ $d =~ ^[0-9]+$ ]]; then
            allowed[$d]=1
        elif [[ $d =~ ^-[0-9]+$ ]]; then
            break # like CUDA: an invalid index hides itself and what follows
        elif [ -n "$d" ]; then
            echo "getGpusResources.sh: CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES is not a" \
                 "list of indices; reporting every GPU nvidia-smi lists" >&2
            filter=0
            break
        fi
    done
fi

addrs=()
while IFS= read -r line; do
    line=${line//[[:space:]]/}
    [[ $line =~ ^[0-9]+$ ]] || continue
    if [ "$filter" = 1 ] && [ -z "${allowed[$line]+x}" ]; then
        continue
    fi
    addrs+=("$line")
done <<<"$listing"
emit "${addrs[@]+"${addrs[@]}"}"
exit 0
