# Sourced by the benchmark scripts (`. benches/svg.sh`, with the script's arguments):
# an optional first argument `--svg FILE`, and the jobs/s chart drawn from a hyperfine
# export with `concur chart`.
#
# After sourcing: SVG is the chart's absolute path (empty without --svg), ARGS the
# arguments as given (for the chart's footer), and SVG_ARGS how many of them --svg took
# (the script then runs `shift "$SVG_ARGS"`).
SVG=
ARGS="$*"
SVG_ARGS=0
if [ "${1:-}" = "--svg" ]; then
  SVG=$(realpath -m "${2:?--svg needs a file}")
  SVG_ARGS=2
fi

# jobs_chart CONCUR HYPERFINE_JSON JOBS TITLE WHAT: with --svg, draws each benchmark's
# jobs/s (JOBS / its seconds) as a bar into $SVG; without it, does nothing.
jobs_chart() {
  [ -n "$SVG" ] || return 0
  "$1" chart --hyperfine "$2" --per "$3" --unit jobs/s --title "$4" --what "$5" \
    --command "$0 $ARGS" --svg "$SVG"
  echo "chart: $SVG" >&2
}
