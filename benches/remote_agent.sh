#!/usr/bin/env bash
# concur run -S with and without --remote-agent, against a local run and GNU parallel
# -S, on a host whose login shell is slow to start: the remote user's ~/.bashrc
# sleeps BASHRC seconds (0.1 by default, what pyenv, conda or nvm initialisation
# commonly costs). The "host" is a private sshd that this script starts on 127.0.0.2
# (generated keys, a free port), so it shares this machine's cores: the figure is
# per remote core, against a local run with as many slots.
#
#   concur run -j N true                          (local baseline, FAST and LONG jobs)
#   concur run -S N/host --remote-agent true      (FAST and LONG jobs)
#   concur run -S N/host true                     (SLOW jobs)
#   GNU parallel -S N/host true                   (SLOW jobs)
#
# N is this machine's core count. Every command is started from bash, so the local
# jobs run in bash (the shell that started concur), as the remote ones do (the login
# shell). Also counts how often ~/.bashrc ran in one --remote-agent run (once per
# host is the point). Reports hyperfine medians of RUNS runs as jobs/s, and ratios
# against the local run of the same invocation.
#
# Needs root (it creates a user `concurbash`, shell bash, with the slow .bashrc),
# a release build; installs hyperfine, GNU parallel and openssh-server if missing.
#
# Usage: benches/remote_agent.sh [FAST] [SLOW] [RUNS] [BASHRC] [LONG]
#        (defaults: 2000 100 5 0.1 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
FAST=${1:-2000}
SLOW=${2:-100}
RUNS=${3:-5}
BASHRC=${4:-0.1}
LONG=${5:-10000}
. benches/need.sh
need hyperfine parallel
[ -x /usr/sbin/sshd ] || apt-get install -y openssh-server >/dev/null
[ "$(id -u)" = 0 ] || { echo "remote_agent.sh: run as root (it creates a user)" >&2; exit 1; }
cargo build --release --quiet
concur=$PWD/target/release/concur
out=$(mktemp -d /tmp/concur-bench-agent.XXXXXX)
chmod 755 "$out"
N=$(nproc)

user=concurbash
id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"
usermod -p '*' -s /bin/bash "$user"
home=$(getent passwd "$user" | cut -d: -f6)
cat > "$home/.bashrc" <<RC
# A login that takes a while, as pyenv/conda/nvm initialisation does.
sleep $BASHRC
echo x >> $out/bashrc-ran
RC
touch "$out/bashrc-ran"
chmod 666 "$out/bashrc-ran"

. benches/sshd.sh
start_sshd "$out" 127.0.0.2
trap 'kill $sshd_pid 2>/dev/null; rm -rf "$out"' EXIT
H="$user@127.0.0.2:$port"
# The remote concur is this build, where $user can run it.
cp "$concur" "$out/concur"
chmod 755 "$out/concur"

: > "$out/bashrc-ran"
seq 1 200 | "$concur" run --ssh "$SSH" -S "$N/$H" --remote-agent --remote-concur "$out/concur" true
agent_logins=$(wc -l < "$out/bashrc-ran")
: > "$out/bashrc-ran"
seq 1 20 | "$concur" run --ssh "$SSH" -S "$N/$H" true
plain_logins=$(wc -l < "$out/bashrc-ran")

echo "== $FAST, $LONG and $SLOW jobs of true, $N at a time, median of $RUNS (the login shell sleeps $BASHRC s)" >&2
agent="--ssh \"$SSH\" -S $N/$H --remote-agent --remote-concur $out/concur"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/agent.json" \
  -n "concur run (local) $FAST" "bash -c 'seq 1 $FAST | $concur run -j $N true'" \
  -n "concur run -S --remote-agent $FAST" "bash -c 'seq 1 $FAST | $concur run $agent true'" \
  -n "concur run (local) $LONG" "bash -c 'seq 1 $LONG | $concur run -j $N true'" \
  -n "concur run -S --remote-agent $LONG" "bash -c 'seq 1 $LONG | $concur run $agent true'" \
  -n "concur run -S $SLOW" "bash -c 'seq 1 $SLOW | $concur run --ssh \"$SSH\" -S $N/$H true'" \
  -n "GNU parallel -S $SLOW" "bash -c 'seq 1 $SLOW | parallel --will-cite --ssh \"$SSH\" -S $N/$H true'" \
  >&2

python3 - "$out/agent.json" "$FAST" "$SLOW" "$N" "$agent_logins" "$plain_logins" "$BASHRC" "$LONG" <<'PY'
import json, sys
runs = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
fast, slow, n, agent_logins, plain_logins, bashrc, long = sys.argv[2:]
print(f"jobs of `true`, {n} at a time, remote ~/.bashrc sleeping {bashrc} s (median of each):")
for name, r in runs.items():
    jobs = int(name.rsplit(" ", 1)[1])
    local = runs.get(f"concur run (local) {jobs}", runs[f"concur run (local) {fast}"])
    rate = jobs / r["median"]
    base = int(local["command"].rsplit(" ", 1)[1]) / local["median"]
    print(f"  {name:36} {r['median']:7.2f} s {rate:8.1f} jobs/s "
          f"{rate / int(n):7.1f} per core  {rate / base:6.3f}x local")
print(f"  ~/.bashrc ran {agent_logins} times for 200 --remote-agent jobs, "
      f"{plain_logins} times for 20 jobs without it")
PY
