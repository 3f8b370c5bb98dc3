#!/bin/bash
# Container health check of bff-server: exit 0 when GET /healthz answers 200, 1 otherwise.
#
# Bash's /dev/tcp speaks enough HTTP/1.0 for one request to our own loopback, so the image needs
# neither curl (about 10 MB of libraries, and more code reachable in the container) nor a
# health subcommand in bff-server. The port is the one bff-server listens on
# (BFF_SERVER__LISTEN, which the image sets to 0.0.0.0:8080).
set -uo pipefail

listen="${BFF_SERVER__LISTEN:-0.0.0.0:8080}"
port="${listen##*:}"

unhealthy() {
    echo "bff-healthcheck: $*" >&2
    exit 1
}

{ exec 3<>"/dev/tcp/127.0.0.1/${port}"; } 2>/dev/null || unhealthy "nothing listens on port ${port}"
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3 ||
    unhealthy "cannot send the request"
IFS= read -r -t 5 status_line <&3 || unhealthy "no answer from /healthz within 5 s"
exec 3<&-

status_line="${status_line%$'\r'}"
[[ "$status_line" =~ ^HTTP/1\.[01]\ 200($|\ ) ]] || unhealthy "/healthz answered: ${status_line}"
