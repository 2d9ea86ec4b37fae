#!/usr/bin/env bash
# Networking cost and throughput, berth vs dockerd, side by side in one run.
#
#   bench/network.sh      needs root; installs hyperfine, jq, bc, nftables, docker.io
#
# 1. `run --rm busybox true` on the default bridge vs `--network none` (what the
#    bridge adds to a start), for berth and for dockerd (its own bridge, started the
#    way ../shared/bench/peer-bench.sh starts it: --iptables=false).
# 2. Container-to-container TCP throughput on one bridge: busybox `nc` receiving,
#    `dd | nc` sending 2 GiB, same image and tool on both engines (median of 3).
# Everything lives under $W, /run/bnbench and bridges bnb0/pbdock1; removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
W=${W:-/tmp/berth-netbench}
EXEC=/run/bnbench
SOCK=$W/berth.sock
DBR=pbdock1; DBR_CIDR=10.233.79.1/24
MB=${MB:-2048}
export DEBIAN_FRONTEND=noninteractive
need=(hyperfine jq bc nftables docker.io busybox-static)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; fi
cargo build --release -q
BERTH="target/release/berth -H unix://$SOCK"
DOCKER="docker -H unix://$W/docker.sock"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
ms() { jq -r '.results[0].median*1000 | .*10 | round/10' "$1"; }
BPID=""; DPID=""
cleanup() {
  set +e
  if [ -n "$BPID" ]; then ids=$($BERTH ps -aq); [ -n "$ids" ] && $BERTH rm -f $ids >/dev/null; kill "$BPID"; wait "$BPID"; fi
  if [ -n "$DPID" ]; then ids=$($DOCKER ps -aq); [ -n "$ids" ] && $DOCKER rm -f $ids >/dev/null; kill "$DPID"; wait "$DPID"; fi
  findmnt -rn -o TARGET | grep -E "^($W|$EXEC)/" | sort -r | while read -r m; do umount -l "$m"; done
  ip link del bnb0 2>/dev/null; ip link del "$DBR" 2>/dev/null; nft delete table ip berth_bnb0 2>/dev/null
  for d in /sys/fs/cgroup/*/bnbench /sys/fs/cgroup/bnbench; do [ -d "$d" ] && rmdir "$d"/* "$d" 2>/dev/null; done
  rm -rf "$W" "$EXEC"
}
trap cleanup EXIT
cleanup
mkdir -p "$W"
scripts/mkbusybox.sh "$W/busybox.tar"

log "berthd"
target/release/berthd -H "unix://$SOCK" --data-root "$W/data" --exec-root "$EXEC" --cgroup-parent bnbench \
  --bridge bnb0 --bip 10.233.80.1/24 >"$W/berthd.log" 2>&1 &
BPID=$!
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.02; done
$BERTH import -c 'CMD ["sh"]' "$W/busybox.tar" busybox:latest >/dev/null

log "dockerd"
ip link add "$DBR" type bridge && ip addr add "$DBR_CIDR" dev "$DBR" && ip link set "$DBR" up
echo '{}' >"$W/daemon.json"
dockerd --config-file "$W/daemon.json" --data-root "$W/docker-root" --exec-root "$W/dx" --pidfile "$W/dockerd.pid" \
  -H "unix://$W/docker.sock" --bridge "$DBR" --iptables=false --ip-forward=false >"$W/dockerd.log" 2>&1 &
DPID=$!
for _ in $(seq 120); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.25; done
$DOCKER import -c 'CMD ["sh"]' "$W/busybox.tar" busybox:latest >/dev/null

HF=(hyperfine -N --warmup 3 --runs "$RUNS" --style basic)
for e in berth docker; do
  cli=$BERTH; [ $e = docker ] && cli=$DOCKER
  log "$e: run --rm, none vs bridge"
  "${HF[@]}" --export-json "$W/$e-none.json" "$cli run --rm --network none busybox true" >/dev/null
  "${HF[@]}" --export-json "$W/$e-bridge.json" "$cli run --rm busybox true" >/dev/null
done

# Throughput: receiver listens, sender pushes $MB MiB; the sender's dd reports.
throughput() {
  local cli=$1 best=() i ip rate
  for i in 1 2 3; do
    $cli run -d --name rx busybox sh -c 'nc -l -p 5001 >/dev/null' >/dev/null
    sleep 0.5
    ip=$($cli inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' rx)
    rate=$($cli run --rm busybox sh -c "dd if=/dev/zero bs=1M count=$MB 2>/tmp/dd | nc $ip 5001; tail -1 /tmp/dd" | awk '{for(i=1;i<=NF;i++) if ($(i+1) ~ /B\/s/) print $i, $(i+1)}')
    $cli rm -f rx >/dev/null
    best+=("$rate")
  done
  printf '%s\n' "${best[@]}" | sort -n | sed -n 2p
}
log "throughput"
BT=$(throughput "$BERTH")
DT=$(throughput "$DOCKER")

BN=$(ms "$W/berth-none.json"); BB=$(ms "$W/berth-bridge.json")
DN=$(ms "$W/docker-none.json"); DB=$(ms "$W/docker-bridge.json")
cat <<REPORT

=== networking ($(date -Is), kernel $(uname -r), $(nproc) cpus) ===
                         --network none    default bridge    bridge adds
berth run --rm true      ${BN} ms          ${BB} ms          $(echo "$BB - $BN" | bc) ms
docker run --rm true     ${DN} ms          ${DB} ms          $(echo "$DB - $DN" | bc) ms
ratio docker / berth     $(echo "scale=2; $DN / $BN" | bc)              $(echo "scale=2; $DB / $BB" | bc)

container-to-container TCP on one bridge ($MB MiB, busybox dd | nc, median of 3)
berth                    $BT
docker                   $DT
REPORT
