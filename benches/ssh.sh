#!/usr/bin/env bash
# concur across machines, against GNU parallel, in one run, on a private sshd that
# this script starts on 127.0.0.2 and 127.0.0.3 (generated keys, a free port):
#
#   1. per-job cost: seq 1 $JOBS | <runner> -S 4/127.0.0.2 echo {}
#      concur run -S, GNU parallel -S, GNU parallel -S --controlmaster, and
#      concur run -j 4 without -S (the local baseline);
#   2. the gcd pool: concur gcd --mode processes (local, 2 workers) against
#      concur gcd --hosts 1/127.0.0.2,1/127.0.0.3 on --scale $SCALE, and the
#      per-task overhead of each on $TINY trivial tasks (gcd(1, 1)), after the
#      start-up and shut-down of a one-task run.
#
# Reports hyperfine medians of $RUNS runs and ratios against a baseline from the
# same run. Both "hosts" are this machine, so they share its cores: speed-up from
# more machines cannot show here, only per-job and per-task costs.
#
# The remote login matters: sshd runs every session through the user's login shell,
# and a heavy ~/.bashrc (pyenv init, say) costs more than the job. So, when run as
# root, the script logs in as a user `concurbench` with /bin/sh as its shell
# (created if missing; BENCH_USER overrides). Not root: it logs in as you.
#
# Needs a release build; installs hyperfine, GNU parallel and openssh-server from
# Debian if missing.
#
# Usage: benches/ssh.sh [--svg FILE] [JOBS] [RUNS] [SCALE] [TINY]   (defaults: 2000, 5, 64, 20000)
set -euo pipefail
# --svg FILE (first): also draw the jobs/s of the first comparison as a chart.
. "$(dirname "$0")/svg.sh"
shift "$SVG_ARGS"
cd "$(dirname "$0")/.."
JOBS=${1:-2000}
RUNS=${2:-5}
SCALE=${3:-64}
TINY=${4:-20000}

for pkg in hyperfine:hyperfine parallel:parallel sshd:openssh-server; do
  tool=${pkg%%:*}
  if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
    echo "installing ${pkg#*:} from Debian's packages..." >&2
    apt-get install -y "${pkg#*:}" >/dev/null 2>&1 ||
      { apt-get update >/dev/null && apt-get install -y "${pkg#*:}" >/dev/null; }
  fi
done
cargo build --release --quiet
concur=$PWD/target/release/concur
out=$(mktemp -d /tmp/concur-bench-ssh.XXXXXX)
chmod 755 "$out"

user=${BENCH_USER:-}
if [ -z "$user" ]; then
  if [ "$(id -u)" = 0 ]; then
    user=concurbench
    if ! id "$user" >/dev/null 2>&1; then
      echo "creating user $user (shell /bin/sh) for the remote logins" >&2
      useradd -m -s /bin/sh "$user"
    fi
    # sshd refuses a locked account ("!") without PAM; "*" has no password either.
    usermod -p '*' "$user"
  else
    user=$(id -un)
  fi
fi

. benches/sshd.sh
start_sshd "$out" 127.0.0.2 127.0.0.3
trap 'kill $sshd_pid 2>/dev/null; rm -rf "$out"' EXIT
A="$user@127.0.0.2:$port"
B="$user@127.0.0.3:$port"
# The remote machine is this one: the remote concur is this build, readable by $user.
remote_concur=$out/concur
cp "$concur" "$remote_concur"
chmod 755 "$remote_concur"

echo "== per job: $JOBS echo jobs, 4 at a time, median of $RUNS" >&2
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/run.json" \
  -n "concur run -S" "sh -c 'seq 1 $JOBS | $concur run --ssh \"$SSH\" -S 4/$A echo {} >/dev/null'" \
  -n "GNU parallel -S" "sh -c 'seq 1 $JOBS | parallel --will-cite --ssh \"$SSH\" -S 4/$A echo {} >/dev/null'" \
  -n "GNU parallel -S --controlmaster" "sh -c 'seq 1 $JOBS | parallel --will-cite --controlmaster --ssh \"$SSH\" -S 4/$A echo {} >/dev/null'" \
  -n "concur run (local)" "sh -c 'seq 1 $JOBS | $concur run -j 4 echo {} >/dev/null'" \
  >&2

echo "== gcd: --scale $SCALE, and $TINY trivial tasks" >&2
printf '1 1\n' > "$out/tiny.txt"
hosts="1/$A,1/$B"
remote="--ssh \"$SSH\" --remote-concur $remote_concur --hosts $hosts"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/gcd.json" \
  -n "gcd local pool" "sh -c '$concur gcd --mode processes -j 2 --scale $SCALE >/dev/null'" \
  -n "gcd --hosts" "sh -c '$concur gcd $remote --scale $SCALE >/dev/null'" \
  -n "tiny local pool" "sh -c '$concur gcd --mode processes -j 2 --pairs $out/tiny.txt --scale $TINY >/dev/null'" \
  -n "tiny --hosts" "sh -c '$concur gcd $remote --pairs $out/tiny.txt --scale $TINY >/dev/null'" \
  -n "one task local pool" "sh -c '$concur gcd --mode processes -j 2 --pairs $out/tiny.txt >/dev/null'" \
  -n "one task --hosts" "sh -c '$concur gcd $remote --pairs $out/tiny.txt >/dev/null'" \
  >&2

jobs_chart "$concur" "$out/run.json" "$JOBS" \
  "Per job over SSH: concur run -S against GNU parallel -S" \
  "$JOBS echo jobs, 4 at a time on one SSH host, $RUNS runs"

python3 - "$out/run.json" "$out/gcd.json" "$JOBS" "$TINY" "$user" <<'PY'
import json, sys
run = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
gcd = {r["command"]: r for r in json.load(open(sys.argv[2]))["results"]}
jobs, tiny, user = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
print(f"per job over SSH ({jobs} jobs, remote user {user}, median):")
base = run["GNU parallel -S"]["median"]
for name, r in run.items():
    m = r["median"]
    print(f"  {name:34} {m:8.2f} s  {jobs / m:8.1f} jobs/s  "
          f"(min {r['min']:.2f}, max {r['max']:.2f})  {base / m:5.2f}x GNU -S")
local = run["concur run (local)"]["median"]
print(f"  concur -S vs concur local: {run['concur run -S']['median'] / local:.1f}x the time")
print("gcd pool (median):")
for name, r in gcd.items():
    print(f"  {name:34} {r['median']:8.3f} s  (min {r['min']:.3f}, max {r['max']:.3f})")
for kind in ["local pool", "--hosts"]:
    start = gcd[f"one task {kind}"]["median"]
    per = (gcd[f"tiny {kind}"]["median"] - start) / (tiny - 1) * 1e6
    print(f"  {kind:10} start-up and shut-down {start * 1e3:7.1f} ms, then {per:7.1f} us per task")
PY
