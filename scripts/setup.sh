#!/bin/sh
# Installs what berth needs, builds it, installs its binaries in $PREFIX/bin
# (default /usr/local/bin), starts berthd in the background unless one already
# answers, makes the default busybox image and runs a container that shows its
# isolation. Run as root; safe to run again.
#
# On a systemd machine berthd becomes a service: contrib/systemd/berthd.socket
# and berthd.service go to /etc/systemd/system and are enabled (socket
# activation; containers outlive a restart of berthd). Elsewhere berthd starts in
# the background and logs to /var/log/berthd.log.
#
# BERTH_SOCKET=/run/NAME/berth.sock runs a berthd of its own beside any other
# (exec root /run/NAME, data root /var/lib/NAME, bridge NAME0), never as a
# service: what CI does.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends busybox-static libseccomp-dev pkg-config iproute2 runc nftables >/dev/null
# The dist profile: release with whole-program optimisation (smaller binaries).
cargo build --profile dist --bins
prefix=${PREFIX:-/usr/local}
mkdir -p "$prefix/bin"
# install(1) replaces each file (new inode), so running monitors keep their binary.
for bin in berth berthd berth-monitor berth-registry; do
  install -m 0755 "target/dist/$bin" "$prefix/bin/$bin"
done
berth=$prefix/bin/berth
# Shell completions and man pages, generated from the CLI's own definitions.
mkdir -p "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
  "$prefix/share/fish/vendor_completions.d" "$prefix/share/man/man1"
"$berth" completion bash >"$prefix/share/bash-completion/completions/berth"
"$berth" completion zsh >"$prefix/share/zsh/site-functions/_berth"
"$berth" completion fish >"$prefix/share/fish/vendor_completions.d/berth.fish"
"$berth" man-pages "$prefix/share/man/man1"

socket=${BERTH_SOCKET:-/run/berth/berth.sock}
run_dir=$(dirname "$socket")
if [ "$socket" = /run/berth/berth.sock ]; then
  set -- # dockerd's defaults: /var/lib/berth, /run/berth, berth0
  log=/var/log/berthd.log
else
  name=$(basename "$run_dir")
  set -- --exec-root "$run_dir" --data-root "/var/lib/$name" --pidfile "$run_dir/berthd.pid" \
    --bridge "$(printf '%.13s' "$name")0" --cgroup-parent "$name"
  log=$run_dir/berthd.log
fi
export BERTH_HOST="unix://$socket"
if [ "$socket" = /run/berth/berth.sock ] && [ -d /run/systemd/system ]; then
  sed "s#/usr/local/bin/berthd#$prefix/bin/berthd#" contrib/systemd/berthd.service \
    >/etc/systemd/system/berthd.service
  install -m 0644 contrib/systemd/berthd.socket /etc/systemd/system/berthd.socket
  systemctl daemon-reload
  systemctl enable --now berthd.socket
  # A new binary is picked up; containers keep running (KillMode=process).
  systemctl enable berthd.service
  systemctl restart berthd.service
  log="journalctl -u berthd"
fi
if ! "$berth" version >/dev/null 2>&1; then
  mkdir -p "$run_dir" "$(dirname "$log")"
  nohup "$prefix/bin/berthd" -H "unix://$socket" "$@" >>"$log" 2>&1 </dev/null &
  i=0
  until "$berth" version >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 200 ]; then
      echo "berthd did not start; its log ($log) ends with:" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    sleep 0.05
  done
fi

tarball=$(mktemp /tmp/berth-busybox-XXXXXX.tar)
trap 'rm -f "$tarball"' EXIT
scripts/mkbusybox.sh "$tarball"
"$berth" import -c 'CMD ["sh"]' "$tarball" busybox:latest >/dev/null
# The script runs inside the container: its $ signs are the container shell's.
"$berth" run --rm --hostname isolated busybox sh -c '
  echo "hello from $(hostname) (uid $(id -u))"
  echo "processes the container can see:"; ps -o pid,comm
  echo "network: $(ip -4 -o addr show eth0 | awk "{print \$4}") via $(ip route | awk "/default/ {print \$3}")"
  echo "capabilities: $(grep CapEff /proc/self/status)"
  echo "seccomp mode: $(grep ^Seccomp: /proc/self/status | cut -f2)"'
echo "berthd is running (log: $log, socket: $socket); the binaries are in $prefix/bin."
echo "try: BERTH_HOST=$BERTH_HOST berth run -it busybox sh"
