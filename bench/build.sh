#!/usr/bin/env bash
# Dockerfile builds, berth vs `DOCKER_BUILDKIT=0 docker build` (dockerd started the
# way ../shared/bench/peer-bench.sh does), same Dockerfile, same busybox base, one run.
#
#   bench/build.sh       needs root; installs hyperfine, jq, bc, docker.io
#
# Cold: --no-cache every time. Rebuild: nothing changed, cache only.
# Targets (issue 7): cold no slower than docker, rebuild at least 3x faster.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
W=${W:-/tmp/berth-buildbench}
EXEC=/run/bbbench
NAME=bb
. bench/lib.sh
need_packages hyperfine jq bc nftables docker.io busybox-static
cargo build --release -q
trap bench_cleanup EXIT
bench_cleanup
mkdir -p "$W/ctx/src"
start_berthd 10.233.82.1/24
start_dockerd 10.233.83.1/24

# Ten steps: metadata, COPY of a tree, and RUNs that write files.
for i in $(seq 50); do head -c 20000 /dev/urandom >"$W/ctx/src/f$i"; done
cat >"$W/ctx/Dockerfile" <<'DF'
FROM busybox
ARG VERSION=1
ENV APP=/app MODE=bench
WORKDIR /app
COPY src/ ./src/
RUN mkdir -p /app/out && cat src/* > /app/out/all
RUN sha256sum /app/out/all > /app/out/sum
LABEL version=$VERSION
EXPOSE 8080
USER nobody
CMD ["cat", "/app/out/sum"]
DF

HF=(hyperfine -N --warmup 1 --runs "$RUNS" --style basic)
log "berth: cold and rebuild"
"${HF[@]}" --export-json "$W/berth-cold.json" "$BERTH build -q --no-cache -t b:1 $W/ctx" >/dev/null
$BERTH build -q -t b:1 "$W/ctx" >/dev/null
"${HF[@]}" --export-json "$W/berth-warm.json" "$BERTH build -q -t b:1 $W/ctx" >/dev/null
log "docker (classic builder): cold and rebuild"
export DOCKER_BUILDKIT=0
"${HF[@]}" --export-json "$W/docker-cold.json" "$DOCKER build -q --no-cache -t b:1 $W/ctx" >/dev/null
$DOCKER build -q -t b:1 "$W/ctx" >/dev/null
"${HF[@]}" --export-json "$W/docker-warm.json" "$DOCKER build -q -t b:1 $W/ctx" >/dev/null

BC=$(ms "$W/berth-cold.json"); BW=$(ms "$W/berth-warm.json")
DC=$(ms "$W/docker-cold.json"); DW=$(ms "$W/docker-warm.json")
cat <<REPORT

=== builds ($(date -Is), kernel $(uname -r), $(nproc) cpus), 10-step Dockerfile, median of $RUNS ===
                    cold (--no-cache)    no-change rebuild
berth               ${BC} ms             ${BW} ms
docker (classic)    ${DC} ms             ${DW} ms
docker / berth      x$(echo "scale=2; $DC / $BC" | bc)                x$(echo "scale=2; $DW / $BW" | bc)
REPORT
