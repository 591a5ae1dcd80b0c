#!/usr/bin/env bash
# Prerequisites of `make docker-test`, idempotent; run as root on Debian (CI runs it on a fresh
# machine). Each step is skipped when its result is already there:
#   1. a Docker engine: Debian's docker.io, dockerd started in the background when none answers
#      (--iptables=false where the host's firewall is not Docker's to manage; log: $LOG);
#   2. compose v2: Debian's docker-compose package (trixie) extracted into
#      ${DOCKER_CONFIG:-~/.docker}/cli-plugins (bookworm's compose v1 rejects the compose file);
#   3. the base images the Dockerfile and docker-compose.yml name: pulled if a registry answers,
#      else STAND-INS built with debootstrap from Debian packages and tagged with those names
#      (deploy/test/standin.sh). Stand-ins are local only: never push them.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE=${IMGFILTER_DOCKER_CACHE:-/var/cache/imgfilter-docker}
LOG=${IMGFILTER_DOCKERD_LOG:-/var/log/imgfilter-dockerd.log}
mkdir -p "$CACHE"
step() { printf '[docker-setup %s] %s\n' "$(date +%T)" "$*"; }

# --- 1. engine ---------------------------------------------------------------------------------
if ! command -v dockerd >/dev/null; then
    step "installing Debian's docker.io"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq docker.io >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq docker.io >/dev/null; }
fi
if ! docker info >/dev/null 2>&1; then
    step "starting dockerd --iptables=false (log: $LOG)"
    nohup dockerd --iptables=false >>"$LOG" 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -20 "$LOG"; exit 1; }
fi
step "engine $(docker version --format '{{.Server.Version}}'), client $(docker version --format '{{.Client.Version}}')"

# --- 2. compose v2 -----------------------------------------------------------------------------
if ! docker compose version >/dev/null 2>&1; then
    step "installing compose v2 from Debian's docker-compose package (trixie)"
    apt_dir="$CACHE/apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
        >"$apt_dir/sources.list"
    # A private apt configuration: the system's sources and pins stay as they are.
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
              -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
              -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
    apt-get "${apt_opts[@]}" update -qq
    (cd "$apt_dir" && apt-get "${apt_opts[@]}" download -qq docker-compose)
    rm -rf "$apt_dir/x" && dpkg-deb -x "$apt_dir"/docker-compose_*.deb "$apt_dir/x"
    plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    mkdir -p "$plugins"
    install -m 0755 "$apt_dir/x/usr/libexec/docker/cli-plugins/docker-compose" "$plugins/"
fi
step "$(docker compose version)"

# --- 3. base images ----------------------------------------------------------------------------
python_image=$(sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile)
nginx_image=$(sed -n 's/^ *image: \(nginx[^ ]*\)$/\1/p' docker-compose.yml)
building=()
for image in "$python_image" "$nginx_image"; do
    if docker image inspect "$image" >/dev/null 2>&1; then
        step "$image: present ($(docker image inspect -f '{{index .Config.Labels "org.imgfilter.stand-in"}}' "$image" | sed 's/^$/pulled/;s/^true$/STAND-IN/'))"
    elif timeout 60 docker pull -q "$image" >/dev/null 2>&1; then
        step "$image: pulled"
    else
        step "$image: cannot be pulled; building a STAND-IN from Debian packages"
        bash deploy/test/standin.sh "$image" "$CACHE" &  # both at once: mostly downloads
        building+=($!)
    fi
done
for pid in "${building[@]}"; do
    wait "$pid"
done
