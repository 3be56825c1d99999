# Sourced by the benchmark scripts: `need TOOL...` installs each missing tool from
# Debian's packages (the package has the tool's name).
need() {
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "installing $tool from Debian's packages..." >&2
      apt-get install -y "$tool" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$tool" >/dev/null; }
    fi
  done
}

# `bench_start`: builds the release binary, sets $concur to it, and $out to a
# temporary directory removed when the script exits.
bench_start() {
  cargo build --release --quiet
  concur=$PWD/target/release/concur
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
}
