#!/usr/bin/env bash
# Issue 14, finding 14: one 2-worker replica (2 CPUs) against two 1-worker replicas (1 CPU each)
# behind the compose stack's nginx, the same 2 CPUs in all. wrk on 127.0.0.1, Sobel on ascent to
# PNG (POST /convolve), ROUNDS alternating rounds of SECONDS each; prints per round the rps, p99
# and the requests per CPU-second the api containers used (their cgroups' CPU time: the figure
# that holds when other work shares the machine, unlike rps and p99).
#   bash deploy/test/workers_per_pod.sh [ROUNDS] [SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3} seconds=${2:-20} connections=${3:-16}
export IMGFILTER_PUBLISH_PORT=${IMGFILTER_PUBLISH_PORT:-18210}
url="http://127.0.0.1:$IMGFILTER_PUBLISH_PORT"
lua=$(mktemp --suffix .lua)
trap 'rm -f "$lua"; docker compose down --timeout 5 >/dev/null 2>&1' EXIT
cat >"$lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"preset": "sobel-x"}'
wrk.headers["Content-Type"] = "application/json"
LUA
cpu_ns() {  # CPU time of the api containers so far (cgroup v2 or v1), nanoseconds
    local total=0 id usage
    for id in $(docker compose ps -q api); do
        if [ -f "/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat" ]; then
            usage=$(awk '/^usage_usec/ {print $2 * 1000}' "/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat")
        else
            usage=$(cat "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage")
        fi
        total=$((total + usage))
    done
    echo "$total"
}
run() {  # workers cpus replicas
    IMGFILTER_WORKERS=$1 API_CPUS=$2 docker compose up -d --wait --scale api="$3" >/dev/null 2>&1
    wrk -t2 -c"$connections" -d3s -s "$lua" "$url/convolve" >/dev/null  # warm-up
    before=$(cpu_ns)
    out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$lua" "$url/convolve")
    cpu_s=$(echo "($(cpu_ns) - $before) / 10^9" | bc -l)
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    printf '%-30s rps %7s  p99 %8s  api CPU %5.1f s  requests per CPU-s %6.1f  non-2xx %s\n' \
        "$3 x $1 worker(s), $2 CPU each" "$rps" "$p99" "$cpu_s" \
        "$(echo "$requests / $cpu_s" | bc -l)" "${non2xx:-0}"
}
for _ in $(seq "$rounds"); do
    run 2 2 1
    run 1 1 2
done
