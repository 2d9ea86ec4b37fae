#!/bin/busybox sh
# PID 1 of the pure cgroup v2 test VM (tests/cgroup2_vm.rs). The kernel boots with
# cgroup_no_v1=all, so cgroup2 is the only hierarchy there is. Stage one moves the
# initramfs into a tmpfs (pivot_root, which every container start uses, refuses
# the initramfs root); stage two starts berthd and prints one `CHECK key value`
# line per fact the host-side test asserts on.
/bin/busybox mkdir -p /proc /sys /dev /newroot
if [ "$1" != stage2 ]; then
  /bin/busybox mount -t tmpfs -o size=1536m root /newroot
  /bin/busybox cp -a /bin /lib /lib64 /usr /etc /payload /init /newroot/
  exec /bin/busybox switch_root /newroot /init stage2
fi
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/bin HOME=/root
mkdir -p /root /tmp /run /var/lib /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
insmod /lib/overlay.ko
ip link set lo up
echo "127.0.0.1 localhost" >/etc/hosts
: >/etc/resolv.conf

check() { echo "CHECK $1 $2"; }
step() { echo "STEP $*"; }

check fs-magic "$(stat -fc %t /sys/fs/cgroup)"
check v1-hierarchies "$(grep -c ' cgroup ' /proc/mounts)"

berthd --bridge none --cgroup-parent berthvm >/run/berthd.log 2>&1 &
for _ in $(seq 100); do [ -S /run/berth/berth.sock ] && break; sleep 0.1; done
berth import -c 'CMD ["sh"]' /payload/busybox.tar busybox:latest >/dev/null
check imported "$?"

step run
check hello "$(berth run --rm busybox echo hello)"
berth run --rm busybox sh -c 'exit 3'
check exit-code "$?"
check own-cgroup "$(berth run --rm busybox cat /proc/self/cgroup)"

step limits
id=$(berth run -d -m 32m --cpus 0.5 --cpu-shares 512 --pids-limit 32 busybox sleep 300)
cg=/sys/fs/cgroup/berthvm/$id
check memory.max "$(cat $cg/memory.max)"
check cpu.max "$(cat $cg/cpu.max)"
check cpu.weight "$(cat $cg/cpu.weight)"
check pids.max "$(cat $cg/pids.max)"
# From inside, the cgroup is read-only: limits cannot be lifted, no sub-cgroup made.
check cgroupfs-writes "$(berth exec "$id" sh -c '(echo max > /sys/fs/cgroup/pids.max) 2>/dev/null && echo lifted; (echo max > /sys/fs/cgroup/memory.max) 2>/dev/null && echo lifted; mkdir /sys/fs/cgroup/escape 2>/dev/null && echo made; echo none')"
check pids.max-after "$(cat $cg/pids.max)"
pid=$(berth inspect -f '{{.State.Pid}}' "$id")
check init-in-cgroup "$(grep -c "^$pid\$" $cg/cgroup.procs)"
# exec joins the container: its hostname is the short id, its pid 1 the sleep.
check exec "$(berth exec "$id" hostname)-$(berth exec "$id" cat /proc/1/cmdline | tr '\0' ' ')"
check short-id "$(echo "$id" | cut -c1-12)"
berth pause "$id" >/dev/null
check paused-status "$(berth inspect -f '{{.State.Status}}' "$id")"
check frozen "$(cat $cg/cgroup.freeze)"
berth unpause "$id" >/dev/null
check thawed "$(cat $cg/cgroup.freeze)"
check stats "$(berth stats --no-stream "$id" | tail -n 1)"
check top "$(berth top "$id" | grep -c 'sleep 300')"
berth stop -t 1 "$id" >/dev/null
check stopped-exit "$(berth inspect -f '{{.State.ExitCode}}' "$id")"
berth rm "$id" >/dev/null
check cgroup-removed "$([ -d $cg ] && echo present || echo gone)"

step oom
berth run --name hog -m 16m busybox sh -c "x=\$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived \${#x}"
check oom-exit "$?"
check oom-killed "$(berth inspect -f '{{.State.OOMKilled}}' hog)"
berth rm hog >/dev/null

step pids
bomb=$(berth run -d --pids-limit 16 busybox sh -c 'bomb() { bomb | bomb & }; bomb 2>/dev/null; sleep 30')
sleep 3
cg=/sys/fs/cgroup/berthvm/$bomb
check bomb-hit-limit "$(awk '/^max /{print ($2 > 0) ? "yes" : "no"}' $cg/pids.events)"
check bomb-within-limit "$(awk '{print ($1 <= 16) ? "yes" : "no"}' $cg/pids.current)"
berth rm -f "$bomb" >/dev/null
check after-bomb "$(berth run --rm busybox echo alive)"

step restart
id=$(berth run -d busybox sleep 300)
kill -9 "$(cat /run/berth/berthd.pid)"
sleep 0.5
berthd --bridge none --cgroup-parent berthvm >>/run/berthd.log 2>&1 &
for _ in $(seq 100); do berth version >/dev/null 2>&1 && break; sleep 0.1; done
check adopted "$(berth inspect -f '{{.State.Status}}' "$id")"
berth rm -f "$id" >/dev/null
check leftover-cgroups "$(find /sys/fs/cgroup/berthvm -mindepth 1 -type d | wc -l)"

echo "---- berthd log (tail)"
tail -n 20 /run/berthd.log
echo BERTH-VM-DONE
poweroff -f
