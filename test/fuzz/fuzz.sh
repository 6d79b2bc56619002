#!/usr/bin/env bash
# Runs the libFuzzer target test/fuzz/fuzz_parse for SECONDS (default 60)
# and prints exactly one TAP line:
#   ok - fuzz money_parse for N s (R runs)
#   not ok - fuzz money_parse for N s: <reason> [crash file]
# Exit 0 on success, 1 otherwise.  The corpus (test/fuzz/corpus, gitignored)
# is seeded from the committed test/fuzz/seeds/ and kept between runs.  A
# crashing input is kept as test/fuzz/crash-* (gitignored) and named in the
# TAP line; on success nothing is left behind but the corpus.
set -u

secs=${1:-60}
case $secs in
	'' | *[!0-9]*) echo "usage: $0 SECONDS" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
fuzzdir=test/fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
	echo "not ok - fuzz money_parse for $secs s: $*"
	exit 1
}

if ! make -s "$fuzzdir/fuzz_parse" > "$work/build.log" 2>&1; then
	sed 's/^/# /' "$work/build.log" >&2
	fail "build failed"
fi

mkdir -p "$fuzzdir/corpus"
cp -n "$fuzzdir"/seeds/* "$fuzzdir/corpus/" 2>/dev/null || true

mkdir -p "$work/artifacts"
"./$fuzzdir/fuzz_parse" -max_total_time="$secs" -timeout=5 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$fuzzdir/corpus" > "$work/fuzz.log" 2>&1
rc=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/fuzz.log" | tail -n 1)
[ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$work/fuzz.log" | tail -n 1)

crash=$(ls "$work/artifacts" 2>/dev/null | head -n 1)
if [ "$rc" -ne 0 ] || [ -n "$crash" ]; then
	tail -n 40 "$work/fuzz.log" | sed 's/^/# /' >&2
	if [ -n "$crash" ]; then
		mv "$work/artifacts/$crash" "$fuzzdir/$crash"
		fail "exit status $rc, ${runs:-?} runs; input kept in $fuzzdir/$crash (replay: ./$fuzzdir/fuzz_parse $fuzzdir/$crash)"
	fi
	fail "exit status $rc, ${runs:-?} runs, no crash file"
fi

echo "ok - fuzz money_parse for $secs s (${runs:-?} runs)"
exit 0
