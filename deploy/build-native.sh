#!/bin/sh
# Compiles service/_fastpath*.c (in the folder given as $1, default .) for the python3 on PATH into
# ./_fastpath<EXT_SUFFIX>. What both Dockerfile native stages run, and the image smoke test too.
set -eu
src=${1:-.}
include=$(python3 -c 'import sysconfig; print(sysconfig.get_path("include"))')
suffix=$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
gcc -O2 -shared -fPIC -I"$include" "$src/_fastpath.c" "$src/_fastpath_json.c" "$src/_fastpath_batch.c" -o "_fastpath$suffix"
