#!/usr/bin/env bash
# Build a local STAND-IN for a base image that cannot be pulled, from Debian packages
# (debootstrap), and tag it with the image's exact name. For test machines without a registry
# only: labelled org.imgfilter.stand-in=true, never to be pushed.
#   standin.sh python:3.11.14-slim-bookworm [cache-dir]
#       bookworm's CPython 3.11 as a venv at /usr/local (python, pip on PATH), groupadd/useradd,
#       this machine's CA certificates in the trust store and pip's (a TLS-re-signing egress).
#   standin.sh nginxinc/nginx-unprivileged:1.28.0-alpine [cache-dir]
#       Debian's nginx (sid: `server ... resolve` in an upstream needs nginx >= 1.27.3) behaving
#       like nginx-unprivileged: uid 101, listens on 8080, pid in /tmp, logs to stdout/stderr;
#       wget for the compose healthcheck.
# The root filesystem is cached as a tarball in the cache dir, so a rebuild takes seconds.
set -euo pipefail
image=$1
cache=${2:-/var/cache/imgfilter-docker}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
tarball="$cache/standin-$(echo "$image" | tr '/:' '__').tar"
say() { printf '[stand-in %s] %s\n' "$(date +%T)" "$*"; }
case "$image" in
    python:*) kind=python ;;
    *nginx*) kind=nginx ;;
    *) echo "no stand-in recipe for $image" >&2; exit 2 ;;
esac
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }

if [ ! -s "$tarball" ]; then
    root=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    if [ "$kind" = python ]; then
        say "debootstrap bookworm + python3.11 for $image"
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
        mkdir -p "$root/usr/local/share/ca-certificates"
        cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
        chroot "$root" update-ca-certificates >/dev/null 2>&1
        printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
        chroot "$root" python3 -m venv /usr/local
        chroot "$root" /usr/local/bin/python -c 'import sys, ssl; print(sys.version)'
    else
        say "debootstrap sid + nginx for $image"
        debootstrap --variant=minbase --include=nginx,wget,ca-certificates \
            sid "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
        chroot "$root" sh -c 'groupadd --system --gid 101 nginx \
            && useradd --system --uid 101 --gid 101 --no-create-home --home-dir /nonexistent \
               --shell /usr/sbin/nologin nginx'
        ln -sf /dev/stdout "$root/var/log/nginx/access.log"
        ln -sf /dev/stderr "$root/var/log/nginx/error.log"
        cat >"$root/etc/nginx/nginx.conf" <<'CONF'
# Stand-in for nginx-unprivileged's default configuration.
worker_processes auto;
pid /tmp/nginx.pid;
error_log /dev/stderr notice;
events { worker_connections 1024; }
http {
    client_body_temp_path /tmp/client_temp;
    proxy_temp_path /tmp/proxy_temp;
    fastcgi_temp_path /tmp/fastcgi_temp;
    uwsgi_temp_path /tmp/uwsgi_temp;
    scgi_temp_path /tmp/scgi_temp;
    access_log /dev/stdout;
    server { listen 8080; location / { return 200 "stand-in\n"; } }
}
CONF
        chroot "$root" nginx -v
    fi
    rm -f "$root.log"
    chroot "$root" sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/*'
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    say "cached $(du -h "$tarball" | cut -f1) in $tarball"
fi

path=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
label="LABEL org.imgfilter.stand-in=true org.opencontainers.image.description=\"LOCAL STAND-IN for $image built from Debian packages; do not push\""
if [ "$kind" = python ]; then
    changes=(--change "ENV $path LANG=C.UTF-8" --change 'CMD ["python3"]' --change "$label")
else
    changes=(--change "ENV $path" --change 'USER 101' --change 'EXPOSE 8080'
             --change 'CMD ["nginx", "-g", "daemon off;"]'
             --change "$label")
fi
docker import "${changes[@]}" "$tarball" "$image" >/dev/null
say "tagged $image (STAND-IN: local only, never push)"
