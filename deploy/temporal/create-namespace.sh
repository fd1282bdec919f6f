#!/bin/sh
# Creates Secure Email's namespace and registers its custom search attributes (ids,
# status and expiry: never PHI). Runs on every `docker compose up`, so each step first
# looks whether it is done already.
#
# TEMPORAL_ADDRESS   host:port of the Temporal frontend
# NAMESPACE          the namespace the app uses (SECURE_EMAIL_TEMPORAL_NAMESPACE)
# RETENTION          how long closed workflows stay visible in the UI (e.g. 30d)
# SEARCH_ATTRIBUTES  "Name=Type Name=Type ..." (infra/temporal/search_attributes.py)
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}" "${RETENTION:?}" "${SEARCH_ATTRIBUTES:?}"

temporal_cli() {
  temporal "$@" --address "$TEMPORAL_ADDRESS"
}

# The frontend answers on its port before it can serve, and a namespace just created
# takes a few seconds to reach every server's cache: retry instead of failing.
retry() {
  tries=0
  until "$@"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
      echo "gave up after $tries tries: $*" >&2
      return 1
    fi
    sleep 2
  done
}

retry temporal_cli operator cluster health >/dev/null

if temporal_cli operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
  echo "Namespace $NAMESPACE exists"
else
  temporal_cli operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
fi

for attribute in $SEARCH_ATTRIBUTES; do
  name=${attribute%%=*}
  type=${attribute#*=}
  registered=$(retry temporal_cli operator search-attribute list --namespace "$NAMESPACE" -o json)
  case "$registered" in
    *"\"$name\""*) echo "Search attribute $name exists" ;;
    *) retry temporal_cli operator search-attribute create \
         --namespace "$NAMESPACE" --name "$name" --type "$type" ;;
  esac
done
