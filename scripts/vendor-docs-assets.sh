#!/usr/bin/env bash
# Refreshes the vendored Swagger UI of /docs (api/assets/docs, see VENDOR.md).
# Run by hand; the build and the tests never fetch anything.
set -euo pipefail
version="${1:?usage: scripts/vendor-docs-assets.sh VERSION}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
want="$(npm view "swagger-ui-dist@$version" dist.integrity)"
npm pack --silent "swagger-ui-dist@$version" >/dev/null
tarball="swagger-ui-dist-$version.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$got" = "$want" ] || { echo "integrity mismatch: registry $want, tarball $got" >&2; exit 1; }
tar xzf "$tarball"
for f in swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE; do cp "package/$f" "$root/api/assets/docs/$f"; done
echo "swagger-ui-dist $version, integrity $got"
(cd "$root/api/assets/docs" && wc -c swagger-ui-bundle.js swagger-ui.css && sha256sum swagger-ui-bundle.js swagger-ui.css)
