#!/bin/sh
# Installs what berth needs, builds it, starts berthd, makes the default busybox
# image and runs a container that shows its isolation. Run as root.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends busybox-static libseccomp-dev pkg-config iproute2 runc nftables >/dev/null
cargo build --release
berth=target/release/berth
socket=${BERTH_SOCKET:-/run/berth/berth.sock}
export BERTH_HOST="unix://$socket"
if ! $berth version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup target/release/berthd -H "unix://$socket" >/var/log/berthd.log 2>&1 &
  i=0
  while [ ! -S "$socket" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
fi
scripts/mkbusybox.sh /tmp/berth-busybox-rootfs.tar
$berth import -c 'CMD ["sh"]' /tmp/berth-busybox-rootfs.tar busybox:latest
$berth run --rm --hostname isolated busybox sh -c '
  echo "hello from $(hostname) (uid $(id -u))"
  echo "processes the container can see:"; ps -o pid,comm
  echo "network: $(ip -4 -o addr show eth0 | awk '{print $4}') via $(ip route | awk '/default/ {print $3}')"
  echo "capabilities: $(grep CapEff /proc/self/status)"
  echo "seccomp mode: $(grep ^Seccomp: /proc/self/status | cut -f2)"'
echo "berthd is running (log: /var/log/berthd.log); try: $berth run -it busybox sh"
