#!/usr/bin/env bash
# Builds the ffmpeg and ffprobe that clipline's workers run: the distribution's own ffmpeg source
# (Debian's, patches applied, so its messages and behaviour are the packaged ffmpeg's), with
# libavcodec, libavformat, libavfilter and the rest linked into the two programs, and only the
# external libraries clipline uses: libx264 (clips), LAME (speech for transcription), libass
# (burned captions), dav1d (AV1 sources) and zlib. No network protocols (the workers hand ffmpeg
# local files only), no capture or playback devices, no hardware-acceleration probing.
#
# Why: Debian's ffmpeg links 215 shared libraries, and resolving them costs every start about
# 0.1 s of CPU (ffmpeg -version: 0.11-0.12 s, almost all of it in the dynamic loader). A video
# takes several ffmpeg starts, so on a 2-core machine that is a share of the pipeline's CPU.
# docs/PERFORMANCE.md has the figures.
#
# Usage: infra/ffmpeg/build.sh <prefix> [ffmpeg-source-dir]
#   Installs <prefix>/bin/ffmpeg and <prefix>/bin/ffprobe, and writes <prefix>/runtime-packages:
#   the Debian packages holding the shared libraries the programs still load (the runtime image
#   installs those). Without a source directory, the source is fetched with `apt-get source`
#   (deb-src entries are added for the run if the system has none). Build dependencies are
#   installed with apt-get when missing (as root, or through sudo).
#   A prefix already holding a build of the same source and options is left as it is.
set -euo pipefail

prefix=${1:?usage: infra/ffmpeg/build.sh <prefix> [ffmpeg-source-dir]}
source_dir=${2:-}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)

CONFIGURE_OPTIONS=(
  --disable-shared --enable-static --enable-gpl
  --disable-autodetect --enable-pthreads --enable-zlib
  --enable-libx264 --enable-libmp3lame --enable-libass --enable-libdav1d
  --disable-network --disable-indevs --enable-indev=lavfi --disable-outdevs
  --disable-doc --disable-ffplay --disable-debug
)
BUILD_PACKAGES=(build-essential nasm pkg-config libx264-dev libmp3lame-dev libass-dev libdav1d-dev zlib1g-dev dpkg-dev xz-utils)

# A build is identified by its source (the distribution's ffmpeg version, or the source tree's
# RELEASE) and its options; a prefix holding the same build is left as it is.
if [ -n "$source_dir" ]; then
  version=$(cat "$source_dir/RELEASE" 2>/dev/null || echo unknown)
else
  version="debian $(apt-cache policy ffmpeg 2>/dev/null | awk '/Candidate:/ { print $2 }')"
fi
stamp="$version ${CONFIGURE_OPTIONS[*]}"
if [ -x "$prefix/bin/ffmpeg" ] && [ -x "$prefix/bin/ffprobe" ] && [ "$(cat "$prefix/build-stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "ffmpeg build: $prefix already holds ffmpeg ($version) built with these options"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

missing=()
for package in "${BUILD_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "ffmpeg build: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A system that had no package lists before the install above names its candidate only now.
if [ -z "$source_dir" ]; then
  version="debian $(apt-cache policy ffmpeg 2>/dev/null | awk '/Candidate:/ { print $2 }')"
  stamp="$version ${CONFIGURE_OPTIONS[*]}"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/clipline-ffmpeg.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ -z "$source_dir" ]; then
  apt_options=()
  # apt's download user cannot write into this private directory: as root, apt downloads itself.
  if [ "$(id -u)" -eq 0 ]; then apt_options+=(-o APT::Sandbox::User=root); fi
  if ! apt-get source --print-uris ffmpeg >/dev/null 2>&1; then
    # Source entries beside the binary ones, for this run only (the system's lists are untouched).
    sources="$work/sources"
    mkdir -p "$sources" "$work/lists/partial"
    for list in /etc/apt/sources.list.d/*.sources; do
      if [ -e "$list" ]; then sed 's/^Types: deb$/Types: deb-src/' "$list" > "$sources/$(basename "$list")"; fi
    done
    for list in /etc/apt/sources.list.d/*.list; do
      if [ -e "$list" ]; then sed -n 's/^deb /deb-src /p' "$list" > "$sources/$(basename "$list")"; fi
    done
    source_list=/dev/null
    if [ -e /etc/apt/sources.list ]; then
      sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > "$sources/sources.list"
      source_list="$sources/sources.list"
    fi
    apt_options+=(-o "Dir::Etc::SourceParts=$sources" -o "Dir::Etc::SourceList=$source_list" -o "Dir::State::Lists=$work/lists")
    apt-get "${apt_options[@]}" update -qq
  fi
  echo "ffmpeg build: fetching the distribution's ffmpeg source"
  (cd "$work" && apt-get "${apt_options[@]}" source -qq ffmpeg >/dev/null)
  source_dir=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'ffmpeg-*' | head -1)
fi
[ -x "$source_dir/configure" ] || { echo "ffmpeg build: no ffmpeg source in '$source_dir'" >&2; exit 1; }

echo "ffmpeg build: configuring ffmpeg $(cat "$source_dir/RELEASE" 2>/dev/null || echo '(unknown version)')"
build="$work/build"
mkdir -p "$build"
(cd "$build" && "$source_dir/configure" --prefix="$prefix" "${CONFIGURE_OPTIONS[@]}" > configure.log 2>&1) || {
  tail -30 "$build/configure.log" >&2
  exit 1
}
jobs=$(nproc 2>/dev/null || echo 2)
echo "ffmpeg build: compiling with $jobs jobs (several minutes)"
make -C "$build" -j"$jobs" ffmpeg ffprobe > "$build/make.log" 2>&1 || {
  tail -30 "$build/make.log" >&2
  exit 1
}
mkdir -p "$prefix/bin"
install -m 755 "$build/ffmpeg" "$build/ffprobe" "$prefix/bin/"

# The Debian packages of the shared libraries left (ldd's paths may be /lib or /usr/lib).
ldd "$prefix/bin/ffmpeg" "$prefix/bin/ffprobe" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u |
  while read -r library; do
    dpkg -S "$library" 2>/dev/null || dpkg -S "$(realpath "$library")" 2>/dev/null || dpkg -S "/usr$library" 2>/dev/null || true
  done | cut -d: -f1 | sort -u > "$prefix/runtime-packages"
echo "$stamp" > "$prefix/build-stamp"
echo "ffmpeg build: $prefix/bin/ffmpeg ($("$prefix/bin/ffmpeg" -version | head -1)), $(ldd "$prefix/bin/ffmpeg" | grep -c '=>') shared libraries"
