#!/usr/bin/env bash
# What depending on concur costs a user: cold `cargo build --release` of a one-file
# crate that calls `concur::process::Cmd`, once per feature set, each in a fresh target
# directory. Prints one line per feature set: crates compiled (cargo's "Compiling"
# lines) and wall seconds. Run it on an otherwise idle machine; needs the crates in
# cargo's cache (it builds --offline).
#
#   scripts/build-weight.sh [WORKDIR]      (default: a new temporary directory)
set -euo pipefail
concur=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
echo "# concur at $concur ($(git -C "$concur" rev-parse --short HEAD 2>/dev/null || echo '?')), in $work"
for variant in default async none; do
  case $variant in
    default) dep="concur = { path = \"$concur\" }" ;;
    async) dep="concur = { path = \"$concur\", default-features = false, features = [\"async\"] }" ;;
    none) dep="concur = { path = \"$concur\", default-features = false }" ;;
  esac
  dir=$work/$variant
  rm -rf "$dir"
  mkdir -p "$dir/src"
  printf '[package]\nname = "usercrate"\nversion = "0.1.0"\nedition = "2024"\n\n[dependencies]\n%s\n' \
    "$dep" > "$dir/Cargo.toml"
  cat > "$dir/src/main.rs" <<'RS'
fn main() {
    let out = concur::process::Cmd::new("echo").arg("hi").run().unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
}
RS
  (
    cd "$dir"
    start=$(date +%s.%N)
    cargo build --release --offline 2> build.log
    end=$(date +%s.%N)
    crates=$(grep -c '^ *Compiling ' build.log)
    echo "$variant crates=$crates seconds=$(awk "BEGIN { printf \"%.1f\", $end - $start }")"
  )
done
