#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser test of the SHAP report.
# Playwright drives this binary (executable_path); `playwright install` cannot download here.
# Tests never skip for a missing browser; this installs it (about 113 MB, 1 to 3 minutes).
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
echo "ensure_chromium: installing chromium with apt"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "ensure_chromium: chromium is still missing after apt-get" >&2; exit 1; }
echo "ensure_chromium: $(chromium --version 2>/dev/null || echo chromium installed)"
