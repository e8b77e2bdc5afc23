#!/bin/sh
# Health check for keepalived/pykad's vrrp_script check_nginx: exit 0 only when nginx really
# serves HTTP on this node.
#
# The widespread "killall -0 nginx; if [ $(echo $0) == 1 ]" test looks at $0 (the script's
# own name), not at killall's status, so it can never fail. This script asks nginx for a page
# instead: curl -f fails on a refused connection, a timeout or an HTTP error status. When
# curl is not installed it falls back to checking that an nginx process exists.
if command -v curl >/dev/null 2>&1; then
    exec curl -fsS --max-time 1 -o /dev/null http://127.0.0.1/
fi
exec pidof nginx >/dev/null
