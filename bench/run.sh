#!/usr/bin/env bash
# berth's speed and memory, side by side with bare runc and (where installed, or with
# PEERS=1 to install them) docker and podman, in one run. Reports ratios.
#
#   bench/run.sh                 berth vs bare runc (installs hyperfine, runc, jq)
#   PEERS=1 bench/run.sh         also dockerd and podman via ../shared/bench/peer-bench.sh
#   BASELINE_BIN=DIR bench/run.sh
#                                also an earlier build's berthd + berth-monitor (copied
#                                into DIR) on a daemon of its own, timed in the same run:
#                                the before/after check of a change
#
# Knobs: RUNS (30), WARMUP (3), BURST (50), W (work dir, /tmp/berth-bench).
# Needs root. Everything it makes lives under $W, /run/bbench and cgroup berth-bench,
# and is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
BURST=${BURST:-50}
W=${W:-/tmp/berth-bench}
EXEC=/run/bbench
SOCK=$W/berth.sock
CG=berth-bench
PEER_BENCH=${PEER_BENCH:-../shared/bench/peer-bench.sh}
export DEBIAN_FRONTEND=noninteractive

need=(hyperfine jq bc curl runc busybox-static libseccomp-dev pkg-config)
[ "${PEERS:-0}" = 1 ] && need+=(docker.io containerd crun podman conmon containernetworking-plugins iptables)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
cargo build --release -q

BERTH="target/release/berth -H unix://$SOCK"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
ms() { jq -r '.results[0].median*1000 | .*10 | round/10' "$1"; }

BASE_SOCK=$W/base.sock
BASE_EXEC=/run/bbench-base
BASE="target/release/berth -H unix://$BASE_SOCK"
BPID=""
BASE_PID=""
cleanup() {
  set +e
  if [ -n "$BPID" ]; then
    ids=$($BERTH ps -aq 2>/dev/null); [ -n "$ids" ] && $BERTH rm -f $ids >/dev/null 2>&1
    kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null
  fi
  if [ -n "$BASE_PID" ]; then
    ids=$($BASE ps -aq 2>/dev/null); [ -n "$ids" ] && $BASE rm -f $ids >/dev/null 2>&1
    kill "$BASE_PID" 2>/dev/null; wait "$BASE_PID" 2>/dev/null
  fi
  ip link del bbench1 2>/dev/null; nft delete table ip berth_bbench1 2>/dev/null
  for d in /sys/fs/cgroup/*/$CG-base /sys/fs/cgroup/$CG-base; do [ -d "$d" ] && rmdir "$d"/* "$d" 2>/dev/null; done
  runc delete -f bbench-runc >/dev/null 2>&1
  findmnt -rn -o TARGET | grep -E "^($W|$EXEC|$BASE_EXEC)/" | sort -r | while read -r m; do umount -l "$m"; done
  for d in /sys/fs/cgroup/*/$CG /sys/fs/cgroup/$CG; do [ -d "$d" ] && rmdir "$d"/* "$d" 2>/dev/null; done
  ip link del bbench0 2>/dev/null; nft delete table ip berth_bbench0 2>/dev/null
  rm -rf "$W" "$EXEC" "$BASE_EXEC"
}
trap cleanup EXIT
cleanup
mkdir -p "$W/bundle/rootfs"

log "berthd + busybox image"
target/release/berthd -H "unix://$SOCK" --data-root "$W/data" --exec-root "$EXEC" \
  --pidfile "$W/berthd.pid" --cgroup-parent "$CG" --bridge bbench0 --bip 10.233.81.1/24 >"$W/berthd.log" 2>&1 &
BPID=$!
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.02; done
scripts/mkbusybox.sh "$W/busybox.tar"
$BERTH import "$W/busybox.tar" busybox:latest >/dev/null
sleep 1
IDLE_RSS=$(rss_kb "$BPID")

log "bare runc bundle from the same rootfs"
tar -C "$W/bundle/rootfs" -xf "$W/busybox.tar"
( cd "$W/bundle" && runc spec )
jq '.process.terminal=false | .process.args=["/bin/true"]' "$W/bundle/config.json" >"$W/bundle/c.json"
mv "$W/bundle/c.json" "$W/bundle/config.json"

# A second runc bundle with the seccomp filter berth applies (docker's profile), so
# that the comparison also shows what the same security costs runc.
probe=$($BERTH run -d busybox true)
$BERTH wait "$probe" >/dev/null
cp -r "$W/bundle" "$W/bundle-seccomp"
jq --slurpfile b "$EXEC/containers/$probe/config.json" '.linux.seccomp = $b[0].linux.seccomp' \
  "$W/bundle/config.json" >"$W/bundle-seccomp/config.json"
$BERTH rm -f "$probe" >/dev/null

HF=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --style basic)
if [ -n "${BASELINE_BIN:-}" ]; then
  log "baseline berthd from $BASELINE_BIN"
  "$BASELINE_BIN/berthd" -H "unix://$BASE_SOCK" --data-root "$W/base-data" --exec-root "$BASE_EXEC" \
    --pidfile "$W/base.pid" --cgroup-parent "$CG-base" --bridge bbench1 --bip 10.233.82.1/24 >"$W/base.log" 2>&1 &
  BASE_PID=$!
  for _ in $(seq 200); do [ -S "$BASE_SOCK" ] && break; sleep 0.02; done
  $BASE import "$W/busybox.tar" busybox:latest >/dev/null
  # hyperfine times its commands one after the other, so a machine whose speed
  # drifts during the run favours one of them: the two are timed in rounds,
  # the order swapped each round, and each median is taken over all its runs.
  ROUNDS=${ROUNDS:-6}
  PER_ROUND=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
  [ "$PER_ROUND" -lt 3 ] && PER_ROUND=3
  log "run --rm true: this build vs the baseline, $ROUNDS rounds of $PER_ROUND, order swapped each round"
  before_cmd="$BASE run --rm --network none busybox true"
  after_cmd="$BERTH run --rm --network none busybox true"
  for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then pair=("$before_cmd" "$after_cmd"); else pair=("$after_cmd" "$before_cmd"); fi
    hyperfine -N --warmup 1 --runs "$PER_ROUND" --style basic \
      --export-json "$W/before-after-$r.json" "${pair[@]}" >"$W/before-after-$r.txt"
  done
  median_of() {
    jq -s --arg cmd "$1" '[.[].results[] | select(.command == $cmd) | .times[]] | sort
      | (if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end)
      | .*1000 | .*10 | round/10' "$W"/before-after-*.json
  }
  BEFORE_MS=$(median_of "$before_cmd")
  AFTER_MS=$(median_of "$after_cmd")
  log "one stats sample (one-shot) of a running container: this build vs the baseline"
  $BASE run -d --network none --name statted busybox sleep 300 >/dev/null
  $BERTH run -d --network none --name statted busybox sleep 300 >/dev/null
  stats_url="http://berth/containers/statted/stats?stream=false&one-shot=true"
  "${HF[@]}" --export-json "$W/stats.json" \
    "curl -sf --unix-socket $BASE_SOCK $stats_url" "curl -sf --unix-socket $SOCK $stats_url" >"$W/stats.txt"
  STATS_BEFORE_MS=$(jq -r '.results[0].median*1000 | .*100 | round/100' "$W/stats.json")
  STATS_AFTER_MS=$(jq -r '.results[1].median*1000 | .*100 | round/100' "$W/stats.json")
  $BASE rm -f statted >/dev/null
  $BERTH rm -f statted >/dev/null
fi
log "run --rm true: berth vs runc run"
"${HF[@]}" --export-json "$W/berth-run.json" "$BERTH run --rm --network none busybox true" >"$W/berth-run.txt"
"${HF[@]}" --export-json "$W/berth-run-noseccomp.json" "$BERTH run --rm --network none --security-opt seccomp=unconfined busybox true" >"$W/berth-run-noseccomp.txt"
"${HF[@]}" --export-json "$W/runc-run.json" "runc run --bundle $W/bundle bbench-runc" >"$W/runc-run.txt"
"${HF[@]}" --export-json "$W/runc-run-seccomp.json" "runc run --bundle $W/bundle-seccomp bbench-runc" >"$W/runc-run-seccomp.txt"
BERTH_RUN=$(ms "$W/berth-run.json")
BERTH_RUN_NOSEC=$(ms "$W/berth-run-noseccomp.json")
RUNC_RUN=$(ms "$W/runc-run.json")
RUNC_RUN_SEC=$(ms "$W/runc-run-seccomp.json")

log "burst of $BURST detached runs"
t0=$(date +%s.%N)
for i in $(seq "$BURST"); do $BERTH run -d --network none --name "burst$i" busybox sleep 300 >/dev/null; done
t1=$(date +%s.%N)
BURST_MS=$(echo "($t1-$t0)*1000/1" | bc)
pss=0; rss=0; n=0
for p in $(pgrep -f "berth-monitor .*$EXEC"); do pss=$((pss + $(pss_kb "$p"))); rss=$((rss + $(rss_kb "$p"))); n=$((n + 1)); done
BUSY_RSS=$(rss_kb "$BPID")
t2=$(date +%s.%N)
$BERTH rm -f $($BERTH ps -aq) >/dev/null
t3=$(date +%s.%N)
RM_MS=$(echo "($t3-$t2)*1000/1" | bc)

cat <<REPORT

=== berth ($(date -Is), kernel $(uname -r), $(nproc) cpus) ===
run --rm --network none busybox true, median ${BERTH_RUN} ms   (bench/network.sh: the bridge's cost)
bare runc run (same rootfs), median        ${RUNC_RUN} ms   (runc spec: no seccomp)
ratio berth / bare runc                    $(echo "scale=2; $BERTH_RUN / $RUNC_RUN" | bc)
runc run with docker's seccomp profile     ${RUNC_RUN_SEC} ms
ratio berth / runc with the same seccomp   $(echo "scale=2; $BERTH_RUN / $RUNC_RUN_SEC" | bc)
berth run --rm, seccomp=unconfined         ${BERTH_RUN_NOSEC} ms
ratio berth / bare runc, both no seccomp   $(echo "scale=2; $BERTH_RUN_NOSEC / $RUNC_RUN" | bc)
$BURST detached runs (sequential)       ${BURST_MS} ms
rm -f of all $BURST                      ${RM_MS} ms
berthd idle RSS                      ${IDLE_RSS} kB
berthd RSS with $n running           ${BUSY_RSS} kB
monitor PSS, sum over $n             ${pss} kB (avg $((pss / (n > 0 ? n : 1))) kB)
monitor RSS, sum over $n             ${rss} kB (avg $((rss / (n > 0 ? n : 1))) kB)
REPORT
if [ -n "${BASELINE_BIN:-}" ]; then
  cat <<REPORT
baseline ($BASELINE_BIN) run --rm, median  ${BEFORE_MS} ms
this build run --rm (same rounds)          ${AFTER_MS} ms
ratio this build / baseline                $(echo "scale=2; $AFTER_MS / $BEFORE_MS" | bc)
one stats sample: baseline ${STATS_BEFORE_MS} ms, this build ${STATS_AFTER_MS} ms
REPORT
fi

if [ "${PEERS:-0}" = 1 ] || command -v dockerd >/dev/null 2>&1 || command -v podman >/dev/null 2>&1; then
  if [ -x "$PEER_BENCH" ]; then
    log "peers (docker, podman, crun, runc) via $PEER_BENCH"
    PW=$W/peers
    W="$PW" RUNS="$RUNS" WARMUP="$WARMUP" BURST="$BURST" KEEP=0 "$PEER_BENCH" >"$W/peers.txt" 2>"$W/peers.err" || true
    table=$(ls -d "$PW"/results-*/table.tsv 2>/dev/null | tail -1)
    if [ -n "$table" ]; then
      cat "$W/peers.txt"
      val() { awk -F'\t' -v n="$1" '$1==n{print $2}' "$table"; }
      echo; echo "=== ratios (peer / berth; >1 means berth is faster) ==="
      for peer in docker-none podman-none runc-run crun-run; do
        v=$(val "$peer"); [ -n "$v" ] && [ "$v" != FAIL ] && printf '%-22s %8s ms  x%s\n' "$peer" "$v" "$(echo "scale=2; $v / $BERTH_RUN" | bc)"
      done
      for peer in docker podman; do
        v=$(val "$peer-burst-$BURST-start"); [ -n "$v" ] && printf '%-22s %8s ms  x%s\n' "$peer-burst-$BURST" "$v" "$(echo "scale=2; $v / $BURST_MS" | bc)"
      done
    else
      echo "peer bench produced no table; see $W/peers.err"; tail -20 "$W/peers.err"
    fi
  fi
fi
