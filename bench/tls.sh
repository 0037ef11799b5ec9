#!/usr/bin/env bash
# HTTPS against nginx and h2o with the same certificate, one worker/thread each, on
# 127.0.0.1 only; each run bounded by DURATION seconds. Needs: openssl, wrk, h2load (Debian
# nghttp2-client), nginx, h2o; our release build (cargo build --release --workspace).
#
#   bench/tls.sh                 # DURATION=5 per run
#   DURATION=10 bench/tls.sh
#
# Workloads: full handshakes per second (wrk, Connection: close: every request a new TLS
# connection without resumption), 1 KiB over HTTP/2 (h2load, 10 connections x 10 streams),
# 1 KiB over HTTP/1.1+TLS (wrk, 10 connections), 10 MiB over TLS (wrk, 2 connections, MB/s);
# then ours alone: 10 MiB over plain HTTP (sendfile) against the same over TLS (read+encrypt).
# Each row also gives the server's CPU (user + system of all its processes, from /proc) a
# request or a MB, and ours against each peer's: where wrk's one thread sets the rate (the
# handshakes, 10 MiB), that column is the one that compares the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$PWD
D=${DURATION:-5}
RUN=$(mktemp -d /tmp/tls-bench.XXXXXX)
trap 'for p in "$RUN"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; sleep 0.5; rm -rf "$RUN"' EXIT

# The site and the certificate (ECDSA P-256, as a CA would issue today).
mkdir -p "$RUN/www"
head -c 1024 /dev/zero | tr '\0' a >"$RUN/www/1k.html"
head -c $((10 << 20)) /dev/zero >"$RUN/www/10m.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null

PORT_OURS=18443 PORT_NGINX=18444 PORT_H2O=18445 PORT_PLAIN=18446

cat >"$RUN/ours.toml" <<EOF
listen = "127.0.0.1:$PORT_PLAIN"
root = "$RUN/www"
plugin_dirs = ["$TOP/target/release"]
cases = ["no_file", "existing_file", "directory_index_file", "always_fail"]
workers = 1
[limits]
keepalive_timeout = 65.0
max_requests_per_connection = 100000
max_connections = 16384
[[listeners]]
address = "127.0.0.1:$PORT_OURS"
tls = { cert = "$RUN/cert.pem", key = "$RUN/key.pem" }
EOF
"$TOP/target/release/server" --config "$RUN/ours.toml" --log-level error >/dev/null 2>"$RUN/ours.log" &
echo $! >"$RUN/ours.pid"

user_line=""; [[ $EUID -eq 0 ]] && user_line="user $(id -un) $(id -gn);"
cat >"$RUN/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $RUN/nginx.pid;
error_log $RUN/nginx.err warn;
events { worker_connections 16384; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path $RUN/nbody; proxy_temp_path $RUN/nproxy;
    fastcgi_temp_path $RUN/nfcgi; uwsgi_temp_path $RUN/nuwsgi; scgi_temp_path $RUN/nscgi;
    server {
        listen 127.0.0.1:$PORT_NGINX ssl;
        http2 on;
        ssl_certificate $RUN/cert.pem;
        ssl_certificate_key $RUN/key.pem;
        ssl_session_cache shared:SSL:10m;
        # nginx's default since 1.23.4; Debian's 1.22 leaves TLS 1.3 out, so its
        # handshakes would be TLS 1.2 ones (cheaper for wrk) against everyone's TLS 1.3.
        ssl_protocols TLSv1.2 TLSv1.3;
        root $RUN/www;
    }
}
EOF
# nginx before 1.25 has no `http2 on;`: fall back to `listen ... ssl http2`.
if ! nginx -t -c "$RUN/nginx.conf" -p "$RUN" >/dev/null 2>&1; then
    sed -i "s/listen 127.0.0.1:$PORT_NGINX ssl;/listen 127.0.0.1:$PORT_NGINX ssl http2;/; /http2 on;/d" "$RUN/nginx.conf"
fi
nginx -c "$RUN/nginx.conf" -p "$RUN"

h2o_user=""; [[ $EUID -eq 0 ]] && h2o_user="user: $(id -un)"
cat >"$RUN/h2o.conf" <<EOF
$h2o_user
pid-file: $RUN/h2o.pid
error-log: $RUN/h2o.err
num-threads: 1
max-connections: 16384
listen:
  host: 127.0.0.1
  port: $PORT_H2O
  ssl:
    certificate-file: $RUN/cert.pem
    key-file: $RUN/key.pem
hosts:
  default:
    paths:
      /:
        file.dir: "$RUN/www"
EOF
h2o -m daemon -c "$RUN/h2o.conf" >/dev/null 2>&1
sleep 1

for port in $PORT_OURS $PORT_NGINX $PORT_H2O; do
    curl -skf --http2 -o /dev/null "https://localhost:$port/1k.html" || { echo "port $port does not serve" >&2; exit 1; }
done

wrk_rps() { wrk -t1 -c"$1" -d"${D}s" "${@:3}" "$2" | awk '/Requests\/sec/ {print $2}'; }
wrk_mbs() { wrk -t1 -c"$1" -d"${D}s" "$2" | awk '/Transfer\/sec/ {v=$2; u=substr(v,length(v)-1); n=v+0; if (u=="GB") n*=1024; if (u=="KB") n/=1024; print n}'; }
h2_rps() { h2load -D "$D" -c10 -m10 "$1" 2>/dev/null | awk '/finished in/ {print $4}'; }

# CPU ticks (user + system) of a server's processes: the one in its pid file and its children.
ticks() { # PIDFILE
    local main pids t=0
    main=$(cat "$1")
    pids="$main $(pgrep -P "$main" | tr '\n' ' ')"
    for p in $pids; do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
# Each row: the rate per server, ours / each peer, then the server CPU (all its processes)
# a unit of work (a request, or a MB) in microseconds, and ours / each peer for it.
row() { # NAME CMD...
    local name=$1; shift
    local v=() c=() port before
    for port in $PORT_OURS $PORT_NGINX $PORT_H2O; do
        local pidfile="$RUN/ours.pid"
        [[ $port == "$PORT_NGINX" ]] && pidfile="$RUN/nginx.pid"
        [[ $port == "$PORT_H2O" ]] && pidfile="$RUN/h2o.pid"
        before=$(ticks "$pidfile")
        v+=("$("$@" "$port")")
        c+=("$(echo "($(ticks "$pidfile") - $before) * 1000000 / $(getconf CLK_TCK) / (${v[-1]} * $D)" | bc -l)")
    done
    printf "%-28s %12s %12s %12s %10.2f %10.2f %9.1f %9.2f %9.2f\n" "$name" "${v[0]}" "${v[1]}" "${v[2]}" \
        "$(echo "${v[0]} / ${v[1]}" | bc -l)" "$(echo "${v[0]} / ${v[2]}" | bc -l)" \
        "${c[0]}" "$(echo "${c[0]} / ${c[1]}" | bc -l)" "$(echo "${c[0]} / ${c[2]}" | bc -l)"
}
handshakes() { wrk_rps 10 "https://localhost:$1/1k.html" -H "Connection: close"; }
h2_1k()      { h2_rps "https://localhost:$1/1k.html"; }
h1_1k()      { wrk_rps 10 "https://localhost:$1/1k.html"; }
big()        { wrk_mbs 2 "https://localhost:$1/10m.bin"; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
{
printf "%-28s %12s %12s %12s %10s %10s %9s %9s %9s\n" workload ours nginx h2o ours/nginx ours/h2o \
    "CPU us" "CPU/nginx" "CPU/h2o"
row "handshakes/s (full)" handshakes
row "1 KiB HTTP/2 req/s" h2_1k
row "1 KiB HTTP/1.1+TLS req/s" h1_1k
row "10 MiB over TLS MB/s" big

plain=$(wrk_mbs 2 "http://127.0.0.1:$PORT_PLAIN/10m.bin")
tls=$(wrk_mbs 2 "https://localhost:$PORT_OURS/10m.bin")
printf "ours, 10 MiB: plain (sendfile) %s MB/s, TLS (read + encrypt) %s MB/s, TLS/plain %.2f\n" \
    "$plain" "$tls" "$(echo "$tls / $plain" | bc -l)"
} | tee "$RUN/table.txt"

# The latest run, with date, machine and command, in bench/results.md.
{
    echo "## bench/tls.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(nproc) cores, $(uname -sr), load before the run $load_before."
    echo "Command: \`DURATION=$D bench/tls.sh\`; $(nginx -v 2>&1), $(h2o --version 2>&1 | head -1)."
    echo
    echo '```'
    cat "$RUN/table.txt"
    echo '```'
} >"$RUN/section.md"
python3 "$TOP/bench/record.py" "$TOP/bench/results.md" bench/tls.sh "$(cat "$RUN/section.md")"
echo "recorded in bench/results.md"
