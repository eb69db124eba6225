#!/usr/bin/env bash
# Instructions per message on the server's hot paths, counted by callgrind
# (see benchmarks/inprocess.py): repeatable whatever the machine's load.
# Usage: benchmarks/instructions.sh [PYTHON]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${1:-python3}"
export PYTHONHASHSEED=0
count() {  # workload messages -> instructions (the fewer of two runs:
    # the fixed start-up cost varies by about 1%)
    local a b
    a=$(one "$@"); b=$(one "$@")
    echo $(( a < b ? a : b ))
}
one() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$py" "$here/inprocess.py" "$1" "$2" 2>&1 | sed -n 's/.*Collected : //p'
}
for spec in "echo32 1000 41000" "echo1m 2 22" "broadcast 5 65"; do
    set -- $spec
    small=$(count "$1" "$2"); large=$(count "$1" "$3")
    per=$(( (large - small) / ($3 - $2) ))
    unit=message; [ "$1" = broadcast ] && { per=$(( per / 1000 )); unit=delivery; }
    echo "$1: $per instructions per $unit"
done
