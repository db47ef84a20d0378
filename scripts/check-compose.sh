#!/usr/bin/env bash
# Checks docker-compose.yml with a real Compose parser, so a typo or an
# unsupported key fails `make test` instead of a user's `docker compose up`.
#
# Runs `docker-compose config` (Debian's docker-compose package; it only
# parses and interpolates, no Docker engine needed) for the default profile
# and for every profile the file names, twice each:
#   - with no .env and ADMIN_TOKEN / AUTH_JWT_SECRET unset: it must still be
#     valid (no `${VAR:?}` that refuses to start), and the rendered file must
#     give neither secret a value (no default secret ships);
#   - with .env.example as the env file: the example must stay valid.
# As root with apt-get (CI) it installs docker-compose when missing, as
# ensure-redis.sh does for redis-server (without the recommended docker.io:
# the parser is all this needs); otherwise it fails saying how.
#
# Usage: scripts/check-compose.sh [-v]   (-v: print each rendered config)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
compose_file="docker-compose.yml"
verbose=""
[[ "${1:-}" == "-v" ]] && verbose=1

if ! command -v docker-compose >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "docker-compose is missing: installing Debian's docker-compose package (apt-get)..."
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose
        command -v docker-compose >/dev/null
    else
        cat >&2 <<'MSG'
check-compose: docker-compose is not installed, and this script installs it only
as root with apt-get. It is needed to check docker-compose.yml (it only parses
the file: no Docker engine is needed). Install it, then run this again:
  Debian/Ubuntu: sudo apt-get install -y docker-compose
  elsewhere:     the docker-compose (v1) package of your system
MSG
        exit 1
    fi
fi

# The checks must not depend on the caller's shell or .env: secrets unset.
unset ADMIN_TOKEN AUTH_JWT_SECRET
empty_env="$(mktemp "${TMPDIR:-/tmp}/check-compose.XXXXXX")"
trap 'rm -f "$empty_env"' EXIT

# Profiles: `config --profiles` where this docker-compose has it, else the
# `profiles: [a, b]` lines of the file.
if profiles="$(docker-compose --env-file "$empty_env" -f "$compose_file" config --profiles 2>/dev/null)"; then
    :
else
    profiles="$(sed -n 's/^[[:space:]]*profiles:[[:space:]]*\[\(.*\)\].*/\1/p' "$compose_file" | tr ',' '\n')"
fi
profiles="$(printf '%s\n' "$profiles" | tr -d ' "'"'" | sed '/^$/d' | sort -u)"

failed=0
check() { # check LABEL ENV_FILE [--profile P]
    local label="$1" env_file="$2"
    shift 2
    local rendered
    if ! rendered="$(docker-compose --env-file "$env_file" -f "$compose_file" "$@" config 2>&1)"; then
        echo "check-compose: FAIL: $label: docker-compose config refused the file:" >&2
        printf '%s\n' "$rendered" >&2
        failed=1
        return
    fi
    if ! docker-compose --env-file "$env_file" -f "$compose_file" "$@" config -q; then
        echo "check-compose: FAIL: $label: docker-compose config -q" >&2
        failed=1
        return
    fi
    # A secret that renders with a value while unset everywhere is a default secret.
    local leaked
    leaked="$(printf '%s\n' "$rendered" | grep -E '^[[:space:]]*-?[[:space:]]*(ADMIN_TOKEN|AUTH_JWT_SECRET)[:=][[:space:]]*[^[:space:]]' \
        | grep -vE '(ADMIN_TOKEN|AUTH_JWT_SECRET):[[:space:]]*(null|~|""|'"''"')[[:space:]]*$' || true)"
    if [[ -n "$leaked" ]]; then
        echo "check-compose: FAIL: $label: a secret has a value although none was given:" >&2
        printf '%s\n' "$leaked" >&2
        failed=1
        return
    fi
    if [[ -n "$verbose" ]]; then
        echo "--- docker-compose config ($label)"
        printf '%s\n' "$rendered"
    fi
    echo "check-compose: ok: $label"
}

for env_file in "$empty_env" .env.example; do
    name="no .env"
    [[ "$env_file" == ".env.example" ]] && name="--env-file .env.example"
    check "default profile, $name" "$env_file"
    while IFS= read -r profile; do
        [[ -n "$profile" ]] || continue
        check "profile $profile, $name" "$env_file" --profile "$profile"
    done <<<"$profiles"
done

if [[ "$failed" != 0 ]]; then
    echo "check-compose: $compose_file: FAILED" >&2
    exit 1
fi
echo "check-compose: $compose_file: default profile and profiles [$(printf '%s' "$profiles" | tr '\n' ' ')] ok"
