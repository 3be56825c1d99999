# Sourced by the SSH benchmarks: `start_sshd DIR ADDRESS...` starts a private sshd on
# the loopback ADDRESSes (generated host and user keys in DIR, a free port) and waits
# until it accepts connections. Sets `port`, `sshd_pid`, and `SSH`, the --ssh command
# that logs in with the user key. The caller stops it (kill $sshd_pid).
start_sshd() {
  local dir=$1; shift
  ssh-keygen -q -t ed25519 -N "" -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N "" -f "$dir/user_key"
  cp "$dir/user_key.pub" "$dir/authorized_keys"
  chmod 644 "$dir/authorized_keys"
  port=$(python3 -c "import socket; s=socket.socket(); s.bind(('$1', 0)); print(s.getsockname()[1])")
  {
    echo "Port $port"
    for address in "$@"; do echo "ListenAddress $address"; done
    cat <<CFG
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile $dir/sshd.pid
LogLevel ERROR
MaxStartups 200:30:400
MaxSessions 200
CFG
  } > "$dir/sshd_config"
  mkdir -p /run/sshd 2>/dev/null || true
  /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
  sshd_pid=$!
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('${!#}', $port), 1)" 2>/dev/null && break
    sleep 0.05
  done
  SSH="ssh -i $dir/user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
}

# `ssh_bench_start ADDRESS...`: bench_start (the release build, $concur, $out), then a
# private sshd on the ADDRESSes; both are stopped and removed when the script exits.
ssh_bench_start() {
  bench_start
  start_sshd "$out" "$@"
  trap 'kill $sshd_pid 2>/dev/null; rm -rf "$out"' EXIT
}
