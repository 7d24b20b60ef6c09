#!/usr/bin/env bash
# Prepares an emulated ARM64 LiteRT in .arm64/ (ignored by git), only what is missing:
#   - qemu-aarch64 10.0, static, from Debian bookworm-backports (bookworm's 7.2 shows the host's
#     x86 /proc/cpuinfo to the guest, so XNNPACK crashes or stays off, and its SME is wrong);
#   - an arm64 CPython 3.11 from Debian's packages, unpacked with dpkg-deb (no chroot, no root,
#     no change to the system's apt or dpkg: apt runs on a private state folder);
#   - the aarch64 wheels of ai-edge-litert at the host's version and at 1.4.0 (the Python
#     build of the LiteRT 1.4.1 the Android app pins; PyPI has no 1.4.1), with numpy.
# Then: .arm64/run LITERT_VERSION CPU python-args...  (CPU: cortex-a53, cortex-a76, ...)
#
#   bash tflite/arm64/setup.sh            # make arm64-test and make test run it
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${ARM64_DIR:-$REPO/.arm64}"
PY="${PY:-$REPO/.venv/bin/python}"
APP_LITERT=1.4.0
HOST_LITERT="$("$PY" -c 'import importlib.metadata as m; print(m.version("ai-edge-litert"))')"
NUMPY="$("$PY" -c 'import numpy; print(numpy.__version__)')"
STAMP="$DIR/.ready-$HOST_LITERT-$APP_LITERT-$NUMPY-$(cksum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)"

[[ -f "$STAMP" ]] && exit 0
[[ "$(uname -m)" == x86_64 ]] || { echo "tflite/arm64/setup.sh: needs an x86_64 host" >&2; exit 1; }
echo "tflite/arm64/setup.sh: preparing the emulated ARM64 LiteRT in $DIR"
rm -rf "$DIR.tmp" && mkdir -p "$DIR.tmp"/{apt/lists/partial,apt/archives/partial,debs,root}
cd "$DIR.tmp"

cat >sources.list <<LIST
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
LIST
APT=(-qq -o "Dir::Etc::SourceList=$PWD/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State=$PWD/apt" -o "Dir::Cache=$PWD/apt" -o Debug::NoLocking=1
     -o APT::Architecture=amd64 -o APT::Architectures::=amd64 -o APT::Architectures::=arm64
     -o APT::Sandbox::User=root)
apt-get "${APT[@]}" update </dev/null
ARM64_PACKAGES=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libexpat1
    zlib1g libffi8 libssl3 libbz2-1.0 liblzma5 libstdc++6 libgcc-s1 libuuid1 libtinfo6
    libncursesw6 libsqlite3-0 libreadline8 libdb5.3 libcrypt1 libnsl2 libtirpc3)
(cd debs && apt-get "${APT[@]}" download qemu-user/bookworm-backports \
    "${ARM64_PACKAGES[@]/%/:arm64/bookworm}" </dev/null)
mkdir qemu && dpkg-deb -x debs/qemu-user_*_amd64.deb qemu
find qemu -type f ! -name qemu-aarch64 -delete  # the package holds every architecture
for deb in debs/*_arm64.deb; do dpkg-deb -x "$deb" root; done
rm -rf debs apt

for version in "$HOST_LITERT" "$APP_LITERT"; do
    "$PY" -m pip install --quiet --disable-pip-version-check --target "litert-$version" \
        --only-binary=:all: --implementation cp --python-version 3.11 \
        --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux2014_aarch64 "ai-edge-litert==$version" "numpy==$NUMPY"
done

# The one way in: .arm64/run VERSION CPU ARGS... runs the ARM64 Python under that CPU model.
cat >run <<'RUN'
#!/usr/bin/env bash
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$1" cpu="$2"; shift 2
PYTHONPATH="$HERE/litert-$version" PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 \
    exec "$HERE/qemu/usr/bin/qemu-aarch64" -L "$HERE/root" -cpu "$cpu" \
    "$HERE/root/usr/bin/python3.11" "$@"
RUN
chmod +x run
./run "$HOST_LITERT" cortex-a53 -c 'import ai_edge_litert.interpreter, numpy' \
    || { echo "tflite/arm64/setup.sh: the ARM64 Python does not start" >&2; exit 1; }
touch "$(basename "$STAMP")"
cd "$REPO" && rm -rf "$DIR" && mv "$DIR.tmp" "$DIR"
echo "tflite/arm64/setup.sh: ready (LiteRT $HOST_LITERT and $APP_LITERT on qemu-aarch64)"
