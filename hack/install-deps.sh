#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine. Idempotent: it only installs what is
# missing. Needs root for apt-get; without root it only reports what is missing.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have mkfs.ext4   || need+=(e2fsprogs)
have mkfs.xfs    || need+=(xfsprogs)
have losetup     || need+=(util-linux)
have blkid       || need+=(util-linux)
have ssh         || need+=(openssh-client)
have etcd        || need+=(etcd-server)
have openssl     || need+=(openssl)
have curl        || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing ${need[*]} (run as root to install them)" >&2
        exit 0
    fi
    echo "install-deps: apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
