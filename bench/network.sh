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
# Everything lives under $W, /run/bnbench and bridges bnb/dnb; removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
W=${W:-/tmp/berth-netbench}
EXEC=/run/bnbench
MB=${MB:-512}
NAME=nb
. bench/lib.sh
need_packages hyperfine jq bc nftables docker.io busybox-static
cargo build --release -q
trap bench_cleanup EXIT
bench_cleanup
mkdir -p "$W"
log "berthd"
start_berthd 10.233.80.1/24
log "dockerd"
start_dockerd 10.233.79.1/24

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
    $cli run -d --name rx busybox sh -c 'sleep 600 | nc -l -p 5001 >/dev/null' >/dev/null
    sleep 0.5
    ip=$($cli inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' rx)
    # Seconds between /proc/uptime readings around the transfer (10 ms steps).
    rate=$($cli run --rm busybox sh -c "a=\$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero bs=1M count=$MB 2>/dev/null | nc $ip 5001; b=\$(cut -d' ' -f1 /proc/uptime); echo \$a \$b" | awk '{print $2 - $1}')
    $cli rm -f rx >/dev/null
    best+=("$rate")
  done
  # median seconds -> MiB/s
  printf '%s\n' "${best[@]}" | sort -n | sed -n 2p | awk -v mb="$MB" '{printf "%.0f MiB/s (%.2f s)", mb / $1, $1}'
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
