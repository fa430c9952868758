#!/usr/bin/env bash
# `npm run test:ffmpeg-build [-- <jest options>]`: the suites that run ffmpeg and ffprobe
# (worker-cpu, worker-io, the end-to-end pipeline, speech and tracing tests), with the code under
# test running clipline's own ffmpeg build (infra/ffmpeg/build.sh, the production image's), while
# test media is still made with the system's ffmpeg. The build goes to .data/ffmpeg and is reused
# while the source and options stay the same.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash infra/ffmpeg/build.sh .data/ffmpeg
export FFMPEG_PATH="$ROOT/.data/ffmpeg/bin/ffmpeg" FFPROBE_PATH="$ROOT/.data/ffmpeg/bin/ffprobe"
# The programs under test are the build: its configuration, and the few libraries it loads.
"$FFMPEG_PATH" -hide_banner -version | grep -q -- '--disable-autodetect' || { echo "test:ffmpeg-build: $FFMPEG_PATH is not clipline's build" >&2; exit 1; }
echo "ffmpeg under test: $FFMPEG_PATH ($(ldd "$FFMPEG_PATH" | grep -c '=>') shared libraries; the system's: $(ldd "$(command -v ffmpeg)" | grep -c '=>'))"
npm run build
# Extra jest arguments go before the `--` that ends --selectProjects' list: after it, jest would
# read an option such as --json as one more test path pattern.
exec node --experimental-vm-modules node_modules/jest/bin/jest.js "$@" --selectProjects integration -- \
  apps/worker-cpu/test apps/worker-io/test tests/speech tests/e2e/pipeline.test.ts tests/e2e/speech-clips.test.ts tests/e2e/tracing.test.ts
