# Shared by bench/*.sh: start berthd and a private dockerd the way
# ../shared/bench/peer-bench.sh does (own bridge, --iptables=false), and clean up.
# Callers set W (work dir), EXEC (short exec root), NAME (bridge/cgroup suffix).

BPID=""; DPID=""
BERTH="target/release/berth -H unix://$W/berth.sock"
DOCKER="docker -H unix://$W/docker.sock"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
ms() { jq -r '.results[0].median*1000 | .*10 | round/10' "$1"; }

need_packages() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

start_berthd() {   # $1: bip
  target/release/berthd -H "unix://$W/berth.sock" --data-root "$W/data" --exec-root "$EXEC" \
    --cgroup-parent "b$NAME" --bridge "b$NAME" --bip "$1" >"$W/berthd.log" 2>&1 &
  BPID=$!
  for _ in $(seq 200); do [ -S "$W/berth.sock" ] && break; sleep 0.02; done
  scripts/mkbusybox.sh "$W/busybox.tar"
  $BERTH import -c 'CMD ["sh"]' "$W/busybox.tar" busybox:latest >/dev/null
}

start_dockerd() {  # $1: bridge CIDR
  ip link add "d$NAME" type bridge && ip addr add "$1" dev "d$NAME" && ip link set "d$NAME" up
  echo '{}' >"$W/daemon.json"
  dockerd --config-file "$W/daemon.json" --data-root "$W/docker-root" --exec-root "$W/dx" \
    --pidfile "$W/dockerd.pid" -H "unix://$W/docker.sock" --bridge "d$NAME" --iptables=false \
    --ip-forward=false >"$W/dockerd.log" 2>&1 &
  DPID=$!
  for _ in $(seq 120); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.25; done
  $DOCKER import -c 'CMD ["sh"]' "$W/busybox.tar" busybox:latest >/dev/null
}

bench_cleanup() {
  set +e
  local ids
  if [ -n "$BPID" ]; then ids=$($BERTH ps -aq); [ -n "$ids" ] && $BERTH rm -f $ids >/dev/null; kill "$BPID"; wait "$BPID"; fi
  if [ -n "$DPID" ]; then ids=$($DOCKER ps -aq); [ -n "$ids" ] && $DOCKER rm -f $ids >/dev/null; kill "$DPID"; wait "$DPID"; fi
  findmnt -rn -o TARGET | grep -E "^($W|$EXEC)/" | sort -r | while read -r m; do umount -l "$m"; done
  ip link del "b$NAME" 2>/dev/null; ip link del "d$NAME" 2>/dev/null; nft delete table ip "berth_b$NAME" 2>/dev/null
  for d in /sys/fs/cgroup/*/b$NAME /sys/fs/cgroup/b$NAME; do [ -d "$d" ] && rmdir "$d"/* "$d" 2>/dev/null; done
  rm -rf "$W" "$EXEC"
}
