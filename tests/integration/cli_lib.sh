# shellcheck shell=bash
# Shared by the CLI test scripts (sourced): a failure counter, `expect`
# and `expect_re`, which run a command and check its exit status and output,
# and `blobs_csv`, the synthetic training data of the end-to-end scripts.

failures=0

fail() {
    echo "FAIL $*" >&2
    failures=$((failures + 1))
}

# check_run NAME STATUS GREP_MODE PATTERN COMMAND...
check_run() {
    local name=$1 want=$2 mode=$3 pattern=$4
    shift 4
    local out st
    out=$("$@" 2>&1)
    st=$?
    if [ "$st" -ne "$want" ] || ! grep -q "$mode" -- "$pattern" <<<"$out"; then
        fail "$name: exit $st (want $want), output:"
        printf '%s\n' "$out" | tail -n 5 >&2
    else
        echo "ok   $name"
    fi
}

# expect NAME STATUS TEXT -- COMMAND...: exit status STATUS and TEXT in the
# combined output; expect_re: the same with an extended regex.
expect() {
    check_run "$1" "$2" -F "$3" "${@:5}"
}
expect_re() {
    check_run "$1" "$2" -E "$3" "${@:5}"
}

# blobs_csv N SEED [NOISE]: N rows of deterministic 3-class blobs, 4
# features then the label (CSV): class c centred at (3c, -3c, 2c, 0) with
# noise of standard deviation NOISE (1) from a fixed LCG, so a run is
# repeatable; with unit noise an MLP learns it to >= 0.95.
blobs_csv() {
    awk -v n="$1" -v seed="$2" -v noise="${3:-1}" 'BEGIN {
        s = seed
        for (i = 0; i < n; i++) {
            c = i % 3
            line = ""
            for (f = 0; f < 4; f++) {
                u = 0
                for (k = 0; k < 12; k++) { s = (s * 1103515245 + 12345) % 2147483648; u += s / 2147483648 }
                centre = (f == 0 ? 3 * c : (f == 1 ? -3 * c : (f == 2 ? 2 * c : 0)))
                line = line sprintf("%.4f,", centre + noise * (u - 6))
            }
            print line c
        }
    }'
}
