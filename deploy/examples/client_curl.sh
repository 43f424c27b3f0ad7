#!/usr/bin/env bash
# Call a Pastiche style on Triton's HTTP endpoint with curl (KServe v2 JSON; fine for small images).
# Usage: client_curl.sh HOST:PORT STYLE [VERSION]
set -euo pipefail
url=$1 style=$2 version=${3:-}
path="/v2/models/${style}${version:+/versions/${version}}/infer"
# An 8x8 RGB image (every pixel mid-grey): 192 uint8 values, row-major [N, H, W, 3].
data=$(printf '128,%.0s' $(seq 191))128
curl -sS --fail-with-body -H 'Content-Type: application/json' "http://${url}${path}" -d @- <<JSON
{"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 8, 8, 3], "data": [${data}]}],
 "outputs": [{"name": "stylized"}]}
JSON
echo
