#!/bin/sh
# Records what GNU parallel prints for the cases in cases.txt into expected/.
# Usage: tests/run_compat/record.sh [NAME...]   (every case when no NAME is given;
# needs GNU parallel; Debian's is 20221122)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v parallel >/dev/null || { echo "record.sh: GNU parallel is not installed" >&2; exit 1; }
version=$(parallel --version | head -1)
if [ $# -eq 0 ]; then
    rm -rf "$here/expected"
fi
mkdir -p "$here/expected"
if [ -e "$here/expected/VERSION" ] && [ "$(cat "$here/expected/VERSION")" != "$version" ]; then
    echo "record.sh: expected/ holds $(cat "$here/expected/VERSION"); record every case with $version" >&2
    exit 1
fi
echo "$version" > "$here/expected/VERSION"
only=" $* "
grep -v '^#' "$here/cases.txt" | grep -v '^$' | while IFS= read -r line; do
    name=${line%% | *}
    cmd=${line#* | }
    if [ $# -gt 0 ]; then
        case "$only" in *" $name "*) ;; *) continue ;; esac
    fi
    work=$(mktemp -d)
    set +e
    # stdin is empty, as in the test (not this loop's list of cases). GNU parallel
    # reads --shebang only as its first argument, so --will-cite is left out there.
    (cd "$work" && SHELL=/bin/sh sh -c "parallel() { case \"\$1\" in --shebang*) command parallel \"\$@\" ;; *) command parallel --will-cite \"\$@\" ;; esac; }; $cmd" \
        < /dev/null > "$here/expected/$name.out" 2>/dev/null)
    echo $? > "$here/expected/$name.status"
    set -e
    rm -rf "$work"
done
echo "recorded $(ls "$here/expected" | grep -c '\.out$') cases with $version"
