# Shared by the CLI test scripts (sourced): a failure counter and
# `expect`, which runs a command and checks its exit status and output.

failures=0

fail() {
    echo "FAIL $*" >&2
    failures=$((failures + 1))
}

# expect NAME STATUS TEXT -- COMMAND...: exit status STATUS and TEXT in the
# combined output.
expect() {
    local name=$1 want=$2 text=$3
    shift 4
    local out st
    out=$("$@" 2>&1)
    st=$?
    if [ "$st" -ne "$want" ] || ! grep -qF -- "$text" <<<"$out"; then
        fail "$name: exit $st (want $want), output:"
        printf '%s\n' "$out" | tail -n 5 >&2
    else
        echo "ok   $name"
    fi
}
