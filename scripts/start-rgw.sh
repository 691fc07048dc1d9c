#!/usr/bin/env bash
# One-node Ceph (1 mon, 1 BlueStore OSD on a sparse file, 1 radosgw) on loopback.
# Usage: start-rgw.sh DATA_DIR [PORT]   (re-running on an existing DATA_DIR restarts it with its data)
# MON_PORT picks the monitor port (default 6789); it is given as a v1 address, since monmaptool
# takes any port but 6789 for a msgr2 one and clients configured for v1 would hang.
set -euo pipefail
D=$(realpath -m "${1:?data dir}"); PORT=${2:-7480}
AK=${S3_ACCESS_KEY:-testkey}; SK=${S3_SECRET_KEY:-testsecret}
mkdir -p "$D"/{run,log,mon,osd/0}
# A start that fails part way stops what it started: a monitor left running would hold its port
# and a core share for the rest of the test run.
trap 'status=$?; [ "$status" = 0 ] || bash "$(dirname "$0")/stop-rgw.sh" "$D"' EXIT
CONF=$D/ceph.conf
if [ ! -f "$CONF" ]; then
  FSID=$(cat /proc/sys/kernel/random/uuid)
  cat > "$CONF" <<EOF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:${MON_PORT:-6789}
public network = 127.0.0.0/8
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
keyring = $D/keyring
mon data = $D/mon/\$id
osd data = $D/osd/\$id
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 8589934592
osd memory target = 1073741824
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
[client.rgw.local]
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw dns name = localhost
log file = $D/log/rgw.log
EOF
fi
c() { timeout 60 "$@" -c "$CONF"; }
# A monitor command can fail while the monitor is still settling under load ("EPERM: problem
# getting command descriptions from mon." seen in CI): the ones below are idempotent, so try again.
mon_cmd() {
  for attempt in 1 2 3 4 5; do
    c "$@" >/dev/null && return 0
    echo "ceph $*: failed (attempt $attempt); trying again" >&2
    sleep 1
  done
  return 1
}
if [ ! -f "$D/mon/a/store.db/CURRENT" ]; then
  FSID=$(awk '/^fsid/{print $3}' "$CONF")
  monmaptool --create --addv a "[v1:127.0.0.1:${MON_PORT:-6789}]" --fsid "$FSID" "$D/monmap" >/dev/null
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  c ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
  NEW=1
fi
ceph-mon -c "$CONF" -i a -f >>"$D/log/mon.out" 2>&1 & echo $! >"$D/run/mon.pid"
if [ "${NEW:-0}" = 1 ]; then
  OSDUUID=$(cat /proc/sys/kernel/random/uuid)
  mon_cmd ceph osd new "$OSDUUID"
  c ceph-osd -i 0 --mkfs --osd-uuid "$OSDUUID" >>"$D/log/osd-mkfs.out" 2>&1
  mon_cmd ceph osd crush add-bucket localhost host
  mon_cmd ceph osd crush move localhost root=default
  mon_cmd ceph osd crush add osd.0 1.0 host=localhost
fi
start_osd() { ceph-osd -c "$CONF" -i 0 -f >>"$D/log/osd.out" 2>&1 & echo $! >"$D/run/osd.pid"; }
start_osd
# Under load the OSD can ask the monitor for its crush class before it knows the cluster's fsid
# ("wrong fsid", then it aborts): start it again until it reports up.
for i in $(seq 1 90); do
  c ceph osd dump 2>/dev/null | grep -q '^osd.0 up' && break
  if ! kill -0 "$(cat "$D/run/osd.pid")" 2>/dev/null; then echo "ceph-osd exited; starting it again" >&2; start_osd; fi
  sleep 1
done
radosgw -c "$CONF" -n client.rgw.local -f >>"$D/log/rgw.out" 2>&1 & echo $! >"$D/run/rgw.pid"
for i in $(seq 1 120); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.5; done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/" || { echo "radosgw did not come up; see $D/log" >&2; exit 1; }
if ! c radosgw-admin user info --uid=test >/dev/null 2>&1; then
  c radosgw-admin user create --uid=test --display-name=test --access-key="$AK" --secret="$SK" >/dev/null
fi
echo "radosgw ready on http://127.0.0.1:$PORT (access key $AK); pids: mon $(cat "$D/run/mon.pid") osd $(cat "$D/run/osd.pid") rgw $(cat "$D/run/rgw.pid")"
