#!/usr/bin/env bash
# Regenerates the committed seed corpus (tests/fuzz/corpus/) from
# gen_corpus.c with a built tree: tests/fuzz/gen_corpus.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-"$here/../../build"}
cmake --build "$build" --target fuzz_gen_corpus >/dev/null
"$build/tests/fuzz/fuzz_gen_corpus" "$here/corpus"
find "$here/corpus" -type f | sort | while read -r f; do
    printf '%6d %s\n' "$(stat -c %s "$f")" "${f#"$here"/}"
done
