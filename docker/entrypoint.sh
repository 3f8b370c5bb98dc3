#!/bin/sh
# Container entry point of bff-server: secrets from files, then the server itself.
#
# bff-server reads its configuration from a TOML file and BFF_* variables. Secrets are better
# mounted as files (compose or Kubernetes secrets) than listed in the environment, so for every
# variable BFF_<NAME>_FILE=<path> this script sets BFF_<NAME> to the file's contents (trailing
# newlines dropped) and removes BFF_<NAME>_FILE, which bff-server would refuse as an unknown key:
#   BFF_PROVIDERS__MAIN__CLIENT_SECRET_FILE=/run/secrets/client_secret
#   BFF_VAULT_KEYS_FILE=/run/secrets/vault_keys   (file: [{ id = "2026-11", key = "…" }])
# Setting both BFF_<NAME> and BFF_<NAME>_FILE is an error. Values are never printed. (So no
# configuration key may end in `_file`: its variable would be read as a path to a secret.)
# The server then replaces this shell (exec), so it is PID 1 and receives SIGTERM itself.
set -eu

for file_variable in $(env | sed -n 's/^\(BFF_[A-Za-z0-9_]*_FILE\)=.*$/\1/p'); do
    name=${file_variable%_FILE}
    eval "path=\${$file_variable}"
    if eval "[ -n \"\${$name+set}\" ]"; then
        echo "bff-entrypoint: both $name and $file_variable are set; keep one" >&2
        exit 2
    fi
    if [ ! -r "$path" ]; then
        echo "bff-entrypoint: $file_variable names $path, which is not a readable file" >&2
        exit 2
    fi
    value=$(cat "$path")
    export "$name=$value"
    unset "$file_variable"
done

exec bff-server "$@"
