#!/usr/bin/env bash
# Compose: a 10-service project brought up and taken down, berth compose on berthd
# side by side with Debian's docker-compose 1.29 on dockerd (and on berthd, which
# separates the client's share from the engine's), in one run. Reports ratios.
#
#   bench/compose.sh      needs root; installs hyperfine, jq, bc, docker.io, docker-compose
#
# The project: 10 busybox services on two networks (one service on both), one
# named volume, a health-checked db the web tier waits for (service_healthy),
# and a one-shot job the workers wait for (service_completed_successfully).
# Timed, each from nothing (the previous run's `down` is hyperfine's --prepare):
#   up -d           everything created, started and, where gated, healthy
#   up -d again     nothing changed: the idempotent no-op
# Everything lives under $W, /run/bcbench and bridges bcb/dcb; removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
W=${W:-/tmp/berth-composebench}
EXEC=/run/bcbench
NAME=cb
. bench/lib.sh
need_packages hyperfine jq bc docker.io docker-compose busybox-static
cargo build --release -q
trap bench_cleanup EXIT
bench_cleanup
mkdir -p "$W/proj"
log "berthd"
start_berthd 10.233.78.1/24
log "dockerd"
start_dockerd 10.233.77.1/24

# version 2.4 so that docker-compose 1.29 reads it as berth compose does.
cat >"$W/proj/docker-compose.yml" <<'YAML'
version: "2.4"
x-svc: &svc
  image: busybox
  command: sleep 3600
  stop_signal: SIGKILL
services:
  db:
    <<: *svc
    command: sh -c "touch /tmp/ready; exec sleep 3600"
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 100ms
      retries: 50
    volumes: [data:/data]
    networks: [back]
  cache: { <<: *svc, networks: [back] }
  queue: { <<: *svc, networks: [back] }
  migrate:
    <<: *svc
    command: "true"
    networks: [back]
    depends_on: { db: { condition: service_healthy } }
  api:
    <<: *svc
    networks: [front, back]
    depends_on: { db: { condition: service_healthy }, cache: { condition: service_started } }
  web:   { <<: *svc, networks: [front], depends_on: [api] }
  proxy: { <<: *svc, networks: [front], depends_on: [web] }
  worker1:
    <<: *svc
    networks: [back]
    depends_on: { migrate: { condition: service_completed_successfully }, queue: { condition: service_started } }
  worker2:
    <<: *svc
    networks: [back]
    depends_on: { migrate: { condition: service_completed_successfully }, queue: { condition: service_started } }
  cron: { <<: *svc, network_mode: none }
volumes:
  data: {}
networks:
  front: {}
  back: {}
YAML

BC="$BERTH compose -p bench --project-directory $W/proj"
DC_DOCKER="env DOCKER_HOST=unix://$W/docker.sock docker-compose -p bench --project-directory $W/proj"
DC_BERTH="env DOCKER_HOST=unix://$W/berth.sock docker-compose -p bench --project-directory $W/proj"

HF=(hyperfine -N --warmup 1 --runs "$RUNS" --style basic)
for who in berth dc-docker dc-berth; do
  case $who in
    berth) c=$BC ;;
    dc-docker) c=$DC_DOCKER ;;
    dc-berth) c=$DC_BERTH ;;
  esac
  log "$who: up -d from nothing"
  "${HF[@]}" --prepare "$c down -v -t 0" --export-json "$W/$who-up.json" "$c up -d" >/dev/null 2>&1
  log "$who: up -d with nothing to do"
  "${HF[@]}" --export-json "$W/$who-noop.json" "$c up -d" >/dev/null 2>&1
  $c down -v -t 0 >/dev/null 2>&1
done

BU=$(ms "$W/berth-up.json");     BN=$(ms "$W/berth-noop.json")
DU=$(ms "$W/dc-docker-up.json"); DN=$(ms "$W/dc-docker-noop.json")
XU=$(ms "$W/dc-berth-up.json");  XN=$(ms "$W/dc-berth-noop.json")
cat <<REPORT

=== compose, 10 services ($(date -Is), kernel $(uname -r), $(nproc) cpus, median of $RUNS) ===
                                          up -d (from nothing)    up -d (no change)
berth compose on berthd                   ${BU} ms                ${BN} ms
docker-compose 1.29 on dockerd            ${DU} ms                ${DN} ms
docker-compose 1.29 on berthd             ${XU} ms                ${XN} ms
ratio dockerd+docker-compose / berth      $(echo "scale=2; $DU / $BU" | bc)                    $(echo "scale=2; $DN / $BN" | bc)
REPORT
