#!/bin/sh
# Records what GNU parallel prints for every case in cases.txt into expected/.
# Usage: tests/run_compat/record.sh   (needs GNU parallel; Debian's is 20221122)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v parallel >/dev/null || { echo "record.sh: GNU parallel is not installed" >&2; exit 1; }
version=$(parallel --version | head -1)
rm -rf "$here/expected"
mkdir -p "$here/expected"
echo "$version" > "$here/expected/VERSION"
grep -v '^#' "$here/cases.txt" | grep -v '^$' | while IFS= read -r line; do
    name=${line%% | *}
    cmd=${line#* | }
    work=$(mktemp -d)
    set +e
    (cd "$work" && SHELL=/bin/sh sh -c "parallel() { command parallel --will-cite \"\$@\"; }; $cmd" \
        > "$here/expected/$name.out" 2>/dev/null)
    echo $? > "$here/expected/$name.status"
    set -e
    rm -rf "$work"
done
echo "recorded $(ls "$here/expected" | grep -c '\.out$') cases with $version"
