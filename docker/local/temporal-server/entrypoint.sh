#!/bin/sh
# Entrypoint of the local Temporal server image: the address to bind and to announce to the
# cluster (the container's own address when BIND_ON_IP is 0.0.0.0), then the server with the
# docker environment's config, which it renders from the environment.
set -eu
own_ip=$(hostname -i | awk '{print $1}')
: "${BIND_ON_IP:=$own_ip}"
export BIND_ON_IP
case $BIND_ON_IP in
  0.0.0.0 | ::0 | ::)
    : "${TEMPORAL_BROADCAST_ADDRESS:=$own_ip}"
    export TEMPORAL_BROADCAST_ADDRESS
    ;;
esac
exec temporal-server --root /etc/temporal --config config --env docker start "$@"
