#!/usr/bin/env bash
# Builds the stand-in images the example stacks' tests run instead of the
# public images their compose.yaml names, offline, from Debian packages:
#
#   nginx-rtmp  nginx-light + libnginx-mod-rtmp      for tiangolo/nginx-rtmp
#   redis       redis-server + redis-cli             for redis:7-alpine
#   redis-web   busybox httpd + a CGI that reads     for rediscommander/redis-commander
#               a key from redis ($REDIS_HOSTS)
#
# Each is a rootfs tarball: busybox, the binaries and the shared libraries
# ldd finds for them, and the files the program needs (users, dirs). The
# tarballs are built once into DIR (NAME.<hash of this script>.tar); with
# ROOT, they are imported into that berth root as
# localhost/stand-in/NAME:test.
#
# Usage: scripts/stand-in-images.sh DIR [ROOT [NAME...]]
#   DIR   where the tarballs go (printed when no ROOT is given)
#   ROOT  a berth root to import into (`berth --root ROOT image import`);
#         NAMEs select images (default: all). $BERTH is the berth binary
#         (default: berth on PATH).
set -euo pipefail

all_images=(nginx-rtmp redis redis-web)
out="${1:?usage: stand-in-images.sh DIR [ROOT [NAME...]]}"
root="${2:-}"
shift $(($# < 2 ? $# : 2))
wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=("${all_images[@]}")
for name in "${wanted[@]}"; do
    case " ${all_images[*]} " in
        *" $name "*) ;;
        *) echo "error: unknown stand-in image '$name' (known: ${all_images[*]})" >&2; exit 2 ;;
    esac
done

# Installs Debian packages when a file they provide is missing; refreshes
# the package lists only when the first attempt fails (as scripts/test.sh).
need() {
    local file="$1"
    shift
    [ -e "$file" ] && return 0
    echo "== installing $*" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends "$@" >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends "$@" >/dev/null \
            || { echo "error: cannot install $* (needed for the stand-in images)" >&2; exit 1; }
    fi
    [ -e "$file" ] || { echo "error: $file still missing after installing $*" >&2; exit 1; }
}

# A busybox root: every applet, /etc/passwd and /etc/group with the users
# the programs below switch to (nginx's workers run as nobody:nogroup).
base_rootfs() {
    local rootfs="$1"
    need /bin/busybox busybox-static
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,var/tmp,proc,sys,dev,run}
    chmod 755 "$rootfs"
    chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
    done
    cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
    cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
www-data:x:33:
nogroup:x:65534:
GROUP
}

# Copies programs and every shared library ldd resolves for them (and the
# dynamic loader) to the same paths in the rootfs.
copy_with_libraries() {
    local rootfs="$1"
    shift
    local file lib
    for file in "$@"; do
        mkdir -p "$rootfs$(dirname "$file")"
        cp -L "$file" "$rootfs$file"
        for lib in $(ldd "$file" | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\/[^ ]+ \(/ {print $1}'); do
            [ -e "$rootfs$lib" ] && continue
            mkdir -p "$rootfs$(dirname "$lib")"
            cp -L "$lib" "$rootfs$lib"
        done
    done
}

build_nginx_rtmp() {
    local rootfs="$1"
    need /usr/sbin/nginx nginx-light
    need /usr/lib/nginx/modules/ngx_rtmp_module.so libnginx-mod-rtmp
    base_rootfs "$rootfs"
    copy_with_libraries "$rootfs" /usr/sbin/nginx /usr/lib/nginx/modules/ngx_rtmp_module.so
    # Debian's build: temp paths under /var/lib/nginx, logs under
    # /var/log/nginx, modules loaded from /etc/nginx/modules-enabled.
    mkdir -p "$rootfs"/{var/lib/nginx,var/log/nginx,etc/nginx/modules-enabled,usr/share/nginx/html}
    echo 'load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;' \
        >"$rootfs/etc/nginx/modules-enabled/50-mod-rtmp.conf"
    cp /etc/nginx/mime.types "$rootfs/etc/nginx/mime.types"
    # A default configuration, for running the image without a mount.
    cat >"$rootfs/etc/nginx/nginx.conf" <<'CONF'
include /etc/nginx/modules-enabled/*.conf;
worker_processes 1;
error_log stderr;
events { worker_connections 256; }
http {
    include mime.types;
    access_log /dev/stdout;
    server { listen 80; root /usr/share/nginx/html; }
}
CONF
    echo "stand-in nginx-rtmp" >"$rootfs/usr/share/nginx/html/index.html"
}

build_redis() {
    local rootfs="$1"
    need /usr/bin/redis-server redis-server
    need /usr/bin/redis-cli redis-tools
    base_rootfs "$rootfs"
    copy_with_libraries "$rootfs" /usr/bin/redis-server /usr/bin/redis-cli
    mkdir -p "$rootfs/data"
}

# redis-commander's stand-in: reads the same REDIS_HOSTS variable
# (label:host:port) and answers GET /cgi-bin/get?KEY with KEY's value,
# spoken to redis in its inline protocol through busybox nc.
build_redis_web() {
    local rootfs="$1"
    base_rootfs "$rootfs"
    mkdir -p "$rootfs/www/cgi-bin"
    echo '<p>stand-in for redis-commander: GET /cgi-bin/get?KEY</p>' >"$rootfs/www/index.html"
    cat >"$rootfs/www/cgi-bin/get" <<'CGI'
#!/bin/sh
target="${REDIS_HOSTS:-local:redis:6379}"
target="${target%%,*}"
rest="${target#*:}"
host="${rest%%:*}"
port="${rest#*:}"
[ "$port" = "$rest" ] && port=6379
key="${QUERY_STRING:-greeting}"
reply="$(printf 'GET %s\r\nQUIT\r\n' "$key" | nc "$host" "$port" | tr -d '\r')"
case "$reply" in
    '$'-1*) value='(nil)' ;;
    '$'*) value="$(printf '%s\n' "$reply" | sed -n 2p)" ;;
    *) printf 'Status: 502 Bad Gateway\r\nContent-Type: text/plain\r\n\r\nredis at %s:%s: %s\n' "$host" "$port" "$reply"; exit 0 ;;
esac
printf 'Content-Type: text/plain\r\n\r\n%s\n' "$value"
CGI
    chmod 755 "$rootfs/www/cgi-bin/get"
}

# The image configuration of each, as `image import -c` instructions.
changes() {
    local path='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    case "$1" in
        nginx-rtmp) printf '%s\n' "$path" 'EXPOSE 1935 80' 'STOPSIGNAL SIGQUIT' 'CMD ["nginx", "-g", "daemon off;"]' ;;
        redis) printf '%s\n' "$path" 'WORKDIR /data' 'EXPOSE 6379' 'CMD ["redis-server"]' ;;
        redis-web) printf '%s\n' "$path" 'ENV REDIS_HOSTS=local:redis:6379' 'EXPOSE 8081' \
            'CMD ["httpd", "-f", "-v", "-p", "8081", "-h", "/www"]' ;;
    esac
}

mkdir -p "$out"
# A tarball is named for this script's contents, so editing the script
# rebuilds the images instead of reusing stale ones.
stamp="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)"
tarball() { echo "$out/$1.$stamp.tar"; }
# Test binaries run at once: build under a lock, each tarball once.
exec 9>"$out/.lock"
flock 9
for name in "${wanted[@]}"; do
    tar="$(tarball "$name")"
    [ -s "$tar" ] && continue
    echo "== building stand-in image $name" >&2
    rm -f "$out/$name".*.tar
    staging="$(mktemp -d "$out/.build-$name.XXXXXX")"
    mkdir "$staging/rootfs"
    "build_${name//-/_}" "$staging/rootfs"
    tar --numeric-owner -C "$staging/rootfs" -cf "$staging/image.tar" .
    mv "$staging/image.tar" "$tar"
    rm -rf "$staging"
done
flock -u 9

if [ -n "$root" ]; then
    berth="${BERTH:-berth}"
    command -v "$berth" >/dev/null 2>&1 || { echo "error: berth binary '$berth' not found (set BERTH)" >&2; exit 1; }
    for name in "${wanted[@]}"; do
        args=()
        while IFS= read -r change; do
            args+=(-c "$change")
        done < <(changes "$name")
        "$berth" --root "$root" image import "${args[@]}" -m "stand-in built by scripts/stand-in-images.sh" \
            "$(tarball "$name")" "localhost/stand-in/$name:test" >/dev/null
        echo "localhost/stand-in/$name:test"
    done
else
    for name in "${wanted[@]}"; do tarball "$name"; done
fi
