# shellcheck shell=bash
# Shared by the CLI test scripts (sourced): a failure counter, `expect`
# and `expect_re`, which run a command and check its exit status and output.

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
