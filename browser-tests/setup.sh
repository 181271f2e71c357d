# Sourced by the browser tests (run.sh, cluster.sh) from this directory, which then call
#   browser_test_setup [EXTRA_DEBIAN_PACKAGE...]
# Installs what is missing (idempotent): Debian's chromium and node, never a browser
# download by a tool, plus the packages named; then playwright-core (the driver only:
# it ships no browser and downloads none). Sets `target_dir` and exports CHROMIUM.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

browser_test_setup() {
    local missing=() package
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    for package in "$@"; do
        command -v "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
    fi

    if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
    fi

    target_dir=$(cargo metadata --format-version 1 --no-deps |
        node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))')
    export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
}
