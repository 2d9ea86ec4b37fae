#!/usr/bin/env bash
# Networking cost and throughput, berth vs dockerd, side by side in one run.
#
#   bench/network.sh      needs root; installs hyperfine, jq, bc, nftables, docker.io
#
# 1. `run --rm busybox true` on the default bridge vs `--network none` (what the
#    bridge adds to a start), for berth and for dockerd (its own bridge, started the
#    way ../shared/bench/peer-bench.sh starts it: --iptables=false).
# 2. Container-to-container TCP throughput on one bridge: iperf3 (Debian's, copied
#    with its libraries into the busybox image, the same image on both engines), a
#    server container and a client container, $SECS seconds, median of 3.
# Everything lives under $W, /run/bnbench and bridges bnb/dnb; removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
W=${W:-/tmp/berth-netbench}
EXEC=/run/bnbench
SECS=${SECS:-5}
NAME=nb
. bench/lib.sh
need_packages hyperfine jq bc nftables docker.io busybox-static iperf3
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

# The iperf3 image: the busybox root plus iperf3 and the libraries it loads.
log "iperf3 image"
root=$W/iperf-root
mkdir -p "$root"
tar -C "$root" -xf "$W/busybox.tar"
for f in /usr/bin/iperf3 $(ldd /usr/bin/iperf3 | awk '$2 == "=>" {print $3} $1 ~ /^\// {print $1}'); do
  mkdir -p "$root$(dirname "$f")"
  cp -L "$f" "$root$f"
done
tar -C "$root" -cf "$W/iperf.tar" .
$BERTH import -c 'CMD ["iperf3", "-s"]' "$W/iperf.tar" iperf:latest >/dev/null
$DOCKER import -c 'CMD ["iperf3", "-s"]' "$W/iperf.tar" iperf:latest >/dev/null

# Throughput: a server container, a client container on the same bridge; the
# client's received-bytes rate, median of 3 runs, in Gbit/s.
throughput() {
  local cli=$1 rates=() i ip
  for i in 1 2 3; do
    $cli run -d --name ipsrv iperf iperf3 -s >/dev/null
    ip=$($cli inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' ipsrv)
    sleep 0.5
    rates+=("$($cli run --rm iperf iperf3 -c "$ip" -t "$SECS" -J | jq '.end.sum_received.bits_per_second / 1e9')")
    $cli rm -f ipsrv >/dev/null
  done
  printf '%s\n' "${rates[@]}" | sort -n | sed -n 2p | awk '{printf "%.2f", $1}'
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

container-to-container TCP on one bridge (iperf3 -t $SECS, median of 3)
berth                    $BT Gbit/s
docker                   $DT Gbit/s
ratio berth / docker     $(echo "scale=3; $BT / $DT" | bc)
REPORT
