#!/usr/bin/env bash
# Push and pull of a ~200 MB, 4-layer image through berth's registry and through
# Debian's docker-registry (the reference distribution server), same client (berth),
# same run; and each registry's peak RSS while serving.
#
#   bench/registry.sh     needs root; installs jq, bc, docker-registry
#
# Targets (issue 8): at least as fast as docker-registry, registry RSS under 20 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
W=${W:-/tmp/berth-regbench}
EXEC=/run/brbench
NAME=rb
. bench/lib.sh
need_packages jq bc nftables docker-registry busybox-static
cargo build --release -q
REGS=()
cleanup_all() { for p in "${REGS[@]}"; do kill "$p" 2>/dev/null; done; bench_cleanup; }
trap cleanup_all EXIT
bench_cleanup
mkdir -p "$W/ctx"
start_berthd 10.233.84.1/24

log "a 4-layer, ~200 MB image"
for i in 1 2 3 4; do head -c 50000000 /dev/urandom >"$W/ctx/blob$i"; done
printf 'FROM busybox\nCOPY blob1 /\nCOPY blob2 /\nCOPY blob3 /\nCOPY blob4 /\n' >"$W/ctx/Dockerfile"
$BERTH build -q -t big:1 "$W/ctx" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return; sleep 0.05; done; }
hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }

measure() {  # $1 label, $2 port, $3 pid
  local push=() pull=() t0 t1 i name
  for i in $(seq "$RUNS"); do
    name="127.0.0.1:$2/bench/big$i:1"
    $BERTH tag big:1 "$name"
    t0=$(now); $BERTH push -q "$name" >/dev/null; t1=$(now)
    push+=("$(echo "($t1-$t0)*1000/1" | bc)")
    $BERTH rmi "$name" >/dev/null
    $BERTH rmi big:1 >/dev/null
    t0=$(now); $BERTH pull -q "$name" >/dev/null; t1=$(now)
    pull+=("$(echo "($t1-$t0)*1000/1" | bc)")
    $BERTH tag "$name" big:1; $BERTH rmi "$name" >/dev/null
  done
  printf '%s %s %s %s\n' "$1" "$(printf '%s\n' "${push[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")" \
    "$(printf '%s\n' "${pull[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")" "$(hwm_kb "$3")"
}

log "berth registry"
P1=$(free_port)
target/release/berth-registry serve --addr "127.0.0.1:$P1" --root "$W/reg-berth" >"$W/reg-berth.log" 2>&1 &
REGS+=($!); wait_port "$P1"
B=$(measure berth "$P1" "${REGS[0]}")

log "docker-registry"
P2=$(free_port)
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$W/reg-docker" "$P2" >"$W/reg.yml"
docker-registry serve "$W/reg.yml" >"$W/reg-docker.log" 2>&1 &
REGS+=($!); wait_port "$P2"
D=$(measure docker-registry "$P2" "${REGS[1]}")

read -r _ BP BL BR <<<"$B"
read -r _ DP DL DR <<<"$D"
cat <<REPORT

=== registry ($(date -Is), kernel $(uname -r), $(nproc) cpus), 4 x 50 MB layers, berth client, median of $RUNS ===
                     push        pull        peak RSS
berth registry       ${BP} ms    ${BL} ms    ${BR} kB
docker-registry      ${DP} ms    ${DL} ms    ${DR} kB
docker-registry / berth   x$(echo "scale=2; $DP / $BP" | bc)       x$(echo "scale=2; $DL / $BL" | bc)
REPORT
