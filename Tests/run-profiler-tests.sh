#!/usr/bin/env bash
# Tests for the heap profiler and the `swiftmalloc` command.
#
# Usage: Tests/run-profiler-tests.sh LIBPATH CLIPATH
#   LIBPATH  the library, e.g. .build/release/libswiftmalloc.so
#   CLIPATH  the command, e.g. .build/release/swiftmalloc-cli
#
# Three groups of cases:
#   report/*    `swiftmalloc report` and `diff` on hand-written profiles
#               (Tests/profile/fixtures/*.report.in, filled in with the addresses
#               of a small C program compiled here): symbolization to exact
#               lines, merging, text, JSON, folded stacks, SVG, diff.
#   run/*       `swiftmalloc run`: exit status, streams, environment, finding
#               the library, choosing among the profiles of a forking command
#               (with a stand-in recorder, Tests/profile/fake-recorder.c).
#   profile/*   the library's recorder end to end on Tests/profile/leaky.c:
#               exact live bytes and blocks per leaking function, sampled
#               estimates within 15%, folded stacks, an SVG that renders, and a
#               diff between two runs; a fork while another thread is inside
#               libunwind (Tests/profile/forkunwind.c).
#
# Environment: PROFILER_TEST_TIMEOUT (seconds per command, 120 by default),
# KEEP_WORK=1 keeps the temporary directory, CC (gcc by default).
# rsvg-convert (Debian librsvg2-bin) is installed with apt-get when missing
# and running as root.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

if [ $# -ne 2 ]; then
    echo "usage: $0 LIBPATH CLIPATH" >&2
    exit 2
fi
for f in "$1" "$2"; do
    if [ ! -f "$f" ]; then
        echo "$0: no such file: $f" >&2
        exit 2
    fi
done
lib=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cli=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
timeout_s=${PROFILER_TEST_TIMEOUT:-120}
CC=${CC:-gcc}
checks="$root/Tests/profile/checks.py"

work=$(mktemp -d "${TMPDIR:-/tmp}/swiftmalloc-profiler.XXXXXX")
work=$(cd "$work" && pwd -P)
cleanup() {
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
ulimit -c 0 2>/dev/null || true

# Prints the last lines of a file, indented, after a failure.
show() {
    local label=$1 file=$2
    [ -s "$file" ] || return 0
    echo "    --- $label (last 30 lines) ---"
    tail -n 30 "$file" | sed 's/^/    /'
}

# After a case has collected what is wrong in the array `problems`: prints each
# and the last lines of FILE (labelled LABEL), and fails; passes when none.
problems_or_pass() { # LABEL FILE
    [ ${#problems[@]} -eq 0 ] && return 0
    printf '    %s\n' "${problems[@]}"
    show "$1" "$2"
    return 1
}

# check NAME COMMAND...: a case passes when COMMAND exits 0; its output is
# shown only when it fails.
check() {
    local name=$1
    shift
    if "$@" >"$work/check.out" 2>&1; then
        pass "$name"
        sed -n '1,3p' "$work/check.out"
    else
        fail "$name"
        sed 's/^/  /' "$work/check.out" | tail -n 40
    fi
}

ensure_rsvg() {
    command -v rsvg-convert >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing librsvg2-bin for rsvg-convert"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librsvg2-bin >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librsvg2-bin >/dev/null 2>&1; }
    fi
    command -v rsvg-convert >/dev/null 2>&1
}

# svg_ok SVG: well-formed XML, renders with rsvg-convert, and is not blank.
svg_ok() {
    local svg=$1
    python3 -c 'import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1])' "$svg" || {
        echo "    $svg is not well-formed XML"
        return 1
    }
    if ! ensure_rsvg; then
        echo "    rsvg-convert is not available (install librsvg2-bin)"
        return 1
    fi
    rsvg-convert -o "${svg%.svg}.png" "$svg" || {
        echo "    rsvg-convert failed on $svg"
        return 1
    }
    python3 "$checks" png "${svg%.svg}.png"
}

start=$(date +%s)

# ---------------------------------------------------------------------------
# report/*: the reader on fixtures
# ---------------------------------------------------------------------------
fx="$work/fixtures"
if ! python3 "$root/Tests/profile/fixtures/generate.py" "$fx" >"$work/gen.log" 2>&1; then
    fail "report/fixtures: generate.py could not build the fixtures"
    show "generate.py" "$work/gen.log"
else
    lines="$fx/lines.json"
    line_of() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$lines" "$1"; }

    text_case() {
        local out="$work/a.txt" problems=()
        "$cli" report "$fx/a.report" >"$out" 2>"$work/err" || { echo "    exit status $?"; show stderr "$work/err"; return 1; }
        for want in "LIVE AT EXIT (leaks): 5 sites hold 20.3 KiB (20,800 B) requested in 17 blocks" \
                    "#1  14.6 KiB live: 15,000 B requested, 15,360 B held, 3 blocks" \
                    "TOP BY ALLOCATED BYTES" "TOP BY ALLOCATION COUNT" "AT THE HEAP'S PEAK" \
                    "FRAGMENTATION" "PINNED PAGES: 2 pages" "TIMELINE" "libmystery.so+0x2abc" \
                    "#4  480 B live: 480 B requested, 480 B held, 10 blocks"; do
            grep -qF -- "$want" "$out" || problems+=("missing: $want")
        done
        grep -qE "^      make_buffer  (.*/)?sites\.c:$(line_of make_buffer)\$" "$out" ||
            problems+=("missing: the make_buffer frame at sites.c:$(line_of make_buffer)")
        grep -q libswiftmalloc "$out" && problems+=("an allocator frame was not dropped")
        problems_or_pass "report" "$out" || return 1
        echo "    sections and exact figures present"
    }
    check "report/text (fixture)" text_case

    json_case() {
        "$cli" report "$fx/$1" --format json >"$work/$1.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        python3 "$checks" fixture-json "$work/$1.json" "$lines"
    }
    check "report/json (fixture, position-independent executable)" json_case a.report
    check "report/json (fixture, fixed-address executable)" json_case b.report

    collapsed_case() {
        "$cli" report "$fx/a.report" --format collapsed >"$work/a.folded" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        "$cli" report "$fx/a.report" --format collapsed --metric alloc-count >"$work/a-count.folded" 2>>"$work/err" ||
            { show stderr "$work/err"; return 1; }
        printf '%s\n' "0xdeadbeef;libmystery.so+0x2abc 200" "[no stack] 1024" "main;grow 4096" \
            "main;load_table;make_buffer 15000" "main;parse_config;make_small 480" >"$work/want.folded"
        printf '%s\n' "0xdeadbeef;libmystery.so+0x2abc 2" "[no stack] 3" "main;churn 1000" "main;grow 1" \
            "main;load_table;make_buffer 3" "main;make_small 1" "main;parse_config;make_small 10" >"$work/want-count.folded"
        diff -u "$work/want.folded" "$work/a.folded" && diff -u "$work/want-count.folded" "$work/a-count.folded" &&
            echo "    live-bytes and alloc-count folded stacks as expected"
    }
    check "report/collapsed (fixture)" collapsed_case

    # Damaged files (cut short, bytes overwritten, lines shuffled, numbers out of
    # range, a frame count past its line): read or refused, never a crash.
    damaged_case() { python3 "$root/Tests/profile/damaged.py" "$cli" "$fx/a.report" 12; }
    check "report/damaged files are read or refused, never crash the tool" damaged_case

    svg_case() {
        "$cli" report "$fx/a.report" --format svg --output "$work/a.svg" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        grep -q '<script' "$work/a.svg" && grep -q 'onclick="zoom(this)"' "$work/a.svg" &&
            grep -q '<title>make_buffer' "$work/a.svg" || { echo "    no script, zoom handler or <title> tooltips"; return 1; }
        if command -v node >/dev/null 2>&1; then
            python3 - "$work/a.svg" >"$work/flame.js" <<'EOF'
import re, sys
print(re.search(r"<!\[CDATA\[(.*?)\]\]>", open(sys.argv[1]).read(), re.S).group(1))
EOF
            node --check "$work/flame.js" || { echo "    the embedded script does not parse"; return 1; }
        fi
        svg_ok "$work/a.svg"
    }
    check "report/svg (fixture)" svg_case

    diff_case() {
        "$cli" diff "$fx/a.report" "$fx/b.report" --format json >"$work/d.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        "$cli" diff "$fx/a.report" "$fx/b.report" >"$work/d.txt" 2>>"$work/err" || { show stderr "$work/err"; return 1; }
        grep -q "GREW (live bytes): 2 sites, +496 B" "$work/d.txt" || { echo "    text diff lacks the GREW line"; show diff "$work/d.txt"; return 1; }
        python3 "$checks" fixture-diff "$work/d.json" "$lines"
    }
    check "report/diff (fixtures)" diff_case

    sampled_case() {
        "$cli" report "$fx/sampled.report" >"$work/s.txt" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        grep -q "figures are estimates" "$work/s.txt" || { echo "    text does not say the figures are estimates"; return 1; }
        "$cli" report "$fx/sampled.report" --format json >"$work/s.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        python3 "$checks" fixture-sampled "$work/s.json"
    }
    check "report/sampled (fixture)" sampled_case

    truncated_case() {
        "$cli" report "$fx/truncated.report" >"$work/t.txt" 2>"$work/err" || { echo "    exit status $?"; show stderr "$work/err"; return 1; }
        grep -q "cut short" "$work/t.txt" && grep -q "skipped 1 malformed line" "$work/t.txt" ||
            { echo "    no warning about the missing end line or the malformed line"; show report "$work/t.txt"; return 1; }
        echo "    cut-short file rendered with warnings"
    }
    check "report/truncated (fixture)" truncated_case

    bad_case() {
        if "$cli" report "$fx/not-a-profile.report" >"$work/out" 2>"$work/err"; then
            echo "    exit status 0 for a file that is not a profile"
            return 1
        fi
        grep -q "not a swiftmalloc profile" "$work/err" || { show stderr "$work/err"; return 1; }
        if "$cli" report "$work/no-such-file" >"$work/out" 2>"$work/err"; then echo "    exit 0 for a missing file"; return 1; fi
        grep -q "no such file" "$work/err" || { show stderr "$work/err"; return 1; }
        # An endless input, and a large file that is no profile, are refused at their
        # first bytes (they were read whole: /dev/zero ran out of memory).
        truncate -s 4G "$work/sparse.bin"
        for endless in /dev/zero "$work/sparse.bin"; do
            if timeout 20 "$cli" report "$endless" >"$work/out" 2>"$work/err"; then echo "    exit 0 for $endless"; return 1; fi
            grep -q "not a swiftmalloc profile" "$work/err" || { echo "    $endless:"; show stderr "$work/err"; return 1; }
        done
        rm -f "$work/sparse.bin"
        # A first line with terminal escapes is shown escaped.
        printf '\033]0;title\007\033[2J text\n' >"$work/escapes.report"
        "$cli" report "$work/escapes.report" >"$work/out" 2>"$work/err"
        grep -q "found '\\\\x1b\]0;title\\\\x07\\\\x1b\[2J text'" "$work/err" && ! grep -q $'\033' "$work/err" ||
            { echo "    escapes:"; show stderr "$work/err"; return 1; }
        echo "    clear errors, non-zero exit; endless and large inputs refused at once; escapes shown escaped"
    }
    check "report/errors" bad_case

    # mini_profile FILE LINE...: a profile with a header, the given records and an end line.
    mini_profile() {
        local file=$1
        shift
        { printf '%s\n' "swiftmalloc-profile 1" "pid 77" "command ./mini" "mode full" "depth 32" \
              "unwinder libunwind" "elapsed_ns 3000000" "reason exit"
          printf '%s\n' "$@" end; } >"$file"
    }

    # no_trap ERRFILE: stderr shows no Swift runtime trap or crash.
    no_trap() {
        ! grep -qE "Fatal error|runtime failure|Backtrace|Illegal instruction|Segmentation" "$1"
    }

    # A module whose file offset, added to its size, passes what an off_t holds:
    # the line is malformed; it used to trap on the arithmetic or the seek.
    module_offset_case() {
        local d="$work/module_offset.d" problems=() rc
        mkdir -p "$d"
        mini_profile "$d/wrap.report" "module 0x1000 0x2000 0xffffffffffffffff $fx/sites" "site 1 1 0x1800" \
            "stat 1 1 10 0 1 10 16 10 1"
        mini_profile "$d/seek.report" "module 0x1000 0x2000 0x7fffffffffffffff $fx/sites" "site 1 1 0x1800" \
            "stat 1 1 10 0 1 10 16 10 1"
        mini_profile "$d/inverted.report" "module 0x2000 0x1000 0x0 $fx/sites" "site 1 1 0x1800" \
            "stat 1 1 10 0 1 10 16 10 1"
        for r in wrap seek inverted; do
            for args in "" "--no-symbolize" "--format json" "--format collapsed" "--format svg" "--no-symbolize --format svg"; do
                # shellcheck disable=SC2086
                "$cli" report "$d/$r.report" $args >"$d/out" 2>"$d/err"
                rc=$?
                [ "$rc" -eq 0 ] && no_trap "$d/err" || problems+=("$r.report $args: exit status $rc")
                if [ -z "$args" ]; then
                    grep -q "skipped 1 malformed line (line 9)" "$d/out" || problems+=("$r.report: no malformed-line warning")
                fi
            done
            "$cli" diff "$d/$r.report" "$d/$r.report" --no-symbolize >"$d/out" 2>"$d/err"
            rc=$?
            [ "$rc" -eq 0 ] && no_trap "$d/err" || problems+=("diff of $r.report: exit status $rc")
        done
        problems_or_pass stderr "$d/err" || return 1
        echo "    offsets 2^64-1 and 2^63-1, and an end before the start: malformed lines, every format and diff"
    }
    check "report/module offsets no file can have are malformed lines, never a trap" module_offset_case

    # A stack far deeper than any recorder writes (a crafted file): the flame
    # graph is laid out without recursion.
    deep_svg_case() {
        local d="$work/deep_svg.d"
        mkdir -p "$d"
        python3 - "$d/deep.report" 25000 <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
frames = " ".join(hex(0x401000 + 16 * i) for i in range(n))
with open(path, "w") as f:
    f.write("swiftmalloc-profile 1\npid 9\ncommand ./deep\nmode full\ndepth 100000\nunwinder libunwind\n"
            "elapsed_ns 1000\nreason exit\n")
    f.write(f"site 1 {n} {frames}\nstat 1 1 64 0 1 64 64 64 1\nsample 500 64 4096\nend\n")
PY
        timeout "$timeout_s" "$cli" report "$d/deep.report" --format svg --no-symbolize -o "$d/deep.svg" 2>"$d/err" ||
            { echo "    exit status $?"; show stderr "$d/err"; return 1; }
        python3 -c 'import sys, xml.etree.ElementTree as ET
n = sum(1 for e in ET.parse(sys.argv[1]).iter() if e.get("class") == "f")
assert n == 25001, n
print("    25,000 frames deep: %d frames drawn, well-formed XML" % n)' "$d/deep.svg"
    }
    check "report/svg of a stack 25,000 frames deep" deep_svg_case

    # A module path that names a FIFO: opening it for reading would wait for a
    # writer forever. Only regular files are opened, none under --no-symbolize.
    module_fifo_case() {
        local d="$work/module_fifo.d" rc args
        mkdir -p "$d"
        rm -f "$d/fifo"
        mkfifo "$d/fifo" || { echo "    mkfifo failed"; return 1; }
        mini_profile "$d/fifo.report" "module 0x1000 0x2000 0x0 $d/fifo" "site 1 1 0x1800" "stat 1 1 10 0 1 10 16 10 1"
        for args in "--no-symbolize" ""; do
            # shellcheck disable=SC2086
            timeout 10 "$cli" report "$d/fifo.report" $args >"$d/out" 2>"$d/err"
            rc=$?
            [ "$rc" -eq 0 ] || { echo "    report $args: exit status $rc (124: it hung)"; show stderr "$d/err"; return 1; }
        done
        grep -q "fifo is not a regular file" "$d/out" || { echo "    no warning about the FIFO"; show report "$d/out"; return 1; }
        echo "    a FIFO as a module: not opened, frames shown as module+offset, with a warning"
    }
    check "report/a module path naming a FIFO is never opened" module_fifo_case

    # Output that cannot be written: a closed stdout is an error, a reader that
    # went away (SIGPIPE ignored, so the write fails with EPIPE) ends the tool
    # quietly with 141, as the signal would.
    output_errors_case() {
        local d="$work/output_errors.d" rc
        mkdir -p "$d"
        "$cli" report "$fx/a.report" --no-symbolize >&- 2>"$d/err"
        rc=$?
        [ "$rc" -ne 0 ] && no_trap "$d/err" && [ "$(wc -l <"$d/err")" -eq 1 ] &&
            grep -q "standard output is closed" "$d/err" ||
            { echo "    closed stdout: exit status $rc"; show stderr "$d/err"; return 1; }
        python3 - "$d/big.report" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("swiftmalloc-profile 1\npid 9\ncommand ./big\nmode full\ndepth 32\n")
    for i in range(1, 4001):
        f.write(f"site {i} 3 {hex(0x401000 + i)} {hex(0x402000 + i)} {hex(0x403000 + i)}\n")
        f.write(f"stat {i} 1 {i} 0 1 {i} {i} {i} 1\n")
    f.write("end\n")
PY
        rc=$( (trap '' PIPE; "$cli" report "$d/big.report" --format json --no-symbolize 2>"$d/err" | head -c1 >/dev/null
               echo "${PIPESTATUS[0]}") )
        [ "$rc" -eq 141 ] && no_trap "$d/err" && [ ! -s "$d/err" ] ||
            { echo "    broken pipe with SIGPIPE ignored: exit status $rc, expected 141 and no message"; show stderr "$d/err"; return 1; }
        echo "    closed stdout: one-line error, status $rc; broken pipe: quiet, status 141"
    }
    check "report/a closed stdout or a broken pipe ends with an error, not a trap" output_errors_case

    output_directory_case() {
        local rc
        "$cli" report "$fx/a.report" --no-symbolize -o "$work" >/dev/null 2>"$work/err"
        rc=$?
        [ "$rc" -ne 0 ] && grep -q "^Error: cannot write $work: it is a directory$" "$work/err" ||
            { echo "    -o DIRECTORY: status $rc"; show stderr "$work/err"; return 1; }
        echo "    -o DIRECTORY: $(cat "$work/err")"
    }
    check "report/-o naming a directory is a clear error" output_directory_case

    crlf_case() {
        local d="$work/crlf.d"
        mkdir -p "$d"
        sed 's/$/\r/' "$fx/a.report" >"$d/a.report"
        cp "$fx/a.report" "$d/lf.report"
        (cd "$d" && "$cli" report a.report >"$d/crlf.txt" 2>"$d/err" && "$cli" report lf.report >"$d/lf.txt" 2>>"$d/err") ||
            { echo "    exit status $?"; show stderr "$d/err"; return 1; }
        sed -i '1d' "$d/crlf.txt" "$d/lf.txt"
        diff -u "$d/lf.txt" "$d/crlf.txt" >"$d/diff" || { echo "    CRLF and LF reports differ"; show diff "$d/diff"; return 1; }
        echo "    a CRLF file reads as the LF one"
    }
    check "report/files with CRLF line ends" crlf_case

    # The heap's requested figures leave out the library's own site; so do the
    # timeline's points, and none is above the peak the report states.
    timeline_own_case() {
        local d="$work/timeline_own.d"
        mkdir -p "$d"
        mini_profile "$d/own.report" "site 1 1 0x1800" "site 2 1 0x1900" "own 2" \
            "stat 1 3 1000 0 3 1000 1000 1000 3" "stat 2 2 100 0 2 100 128 100 2" \
            "heap 8192 1100 8192 1100 4194304 0 0" \
            "sample 1000 100 4096" "sample 2000 1164 8192" "sample 3000 1100 8192"
        "$cli" report "$d/own.report" --no-symbolize --format json >"$d/own.json" 2>"$d/err" ||
            { show stderr "$d/err"; return 1; }
        python3 - "$d/own.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
peak = d["heap"]["peak_requested_bytes"]
points = [s["requested_bytes"] for s in d["timeline"]]
assert peak == 1000, peak
assert points == [0, 1000, 1000], points
print("    peak %d B requested; timeline %s" % (peak, points))
PY
    }
    check "report/the timeline leaves out the library's own bytes and stays under the peak" timeline_own_case

    # Strings from the file reach a terminal and an XML document: control
    # characters are shown escaped in text, and XML's forbidden characters
    # are replaced in the SVG.
    strange_strings_case() {
        local d="$work/strange.d"
        mkdir -p "$d"
        printf 'swiftmalloc-profile 1\npid 5\ncommand ./x \033[2J\033]0;title\007 \357\277\277 \357\277\276 \342\200\256end\nmode full\nsite 1 1 0x1800\nstat 1 1 10 0 1 10 16 10 1\nsample 10 10 4096\nend\n' \
            >"$d/s.report"
        "$cli" report "$d/s.report" --no-symbolize >"$d/s.txt" 2>"$d/err" || { show stderr "$d/err"; return 1; }
        if LC_ALL=C grep -q "$(printf '[\033\007]')" "$d/s.txt"; then echo "    raw control characters in the text report"; return 1; fi
        grep -qF 'command   ./x \x1b[2J\x1b]0;title\x07' "$d/s.txt" ||
            { echo "    the command line is not shown escaped"; show report "$d/s.txt"; return 1; }
        "$cli" report "$d/s.report" --no-symbolize --format svg -o "$d/s.svg" 2>"$d/err" || { show stderr "$d/err"; return 1; }
        python3 -c 'import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1])' "$d/s.svg" ||
            { echo "    the SVG is not well-formed XML"; return 1; }
        echo "    text shows escapes; the SVG is well-formed"
    }
    check "report/control and XML-forbidden characters from the file" strange_strings_case

    streams_input_case() {
        local rc
        "$cli" report <(cat "$fx/a.report") --no-symbolize >"$work/fifo.txt" 2>"$work/err" ||
            { echo "    a process substitution: exit status $?"; show stderr "$work/err"; return 1; }
        grep -q "LIVE AT EXIT (leaks): " "$work/fifo.txt" || { show report "$work/fifo.txt"; return 1; }
        "$cli" report - --no-symbolize <"$fx/a.report" >"$work/stdin.txt" 2>"$work/err" ||
            { echo "    report -: exit status $?"; show stderr "$work/err"; return 1; }
        grep -q "LIVE AT EXIT (leaks): " "$work/stdin.txt" || { show report "$work/stdin.txt"; return 1; }
        "$cli" report "$work" >/dev/null 2>"$work/err"
        rc=$?
        [ "$rc" -ne 0 ] && grep -q "is a directory" "$work/err" || { echo "    a directory: status $rc"; show stderr "$work/err"; return 1; }
        echo "    FIFO and standard input read; a directory refused"
    }
    check "report/reads a FIFO and standard input; a directory is refused" streams_input_case

    max_depth_case() {
        local d="$work/max_depth.d" frames
        mkdir -p "$d"
        frames=$(seq 1 64 | sed 's/^/0x10/' | tr '\n' ' ')
        mini_profile "$d/64.report" "site 1 64 $frames" "stat 1 1 10 0 1 10 16 10 1"
        sed 's/^depth 32$/depth 64/' "$d/64.report" >"$d/at-max.report"
        frames=$(seq 1 32 | sed 's/^/0x10/' | tr '\n' ' ')
        mini_profile "$d/32.report" "site 1 32 $frames" "stat 1 1 10 0 1 10 16 10 1"
        "$cli" report "$d/at-max.report" --no-symbolize >"$d/at-max.txt" 2>"$d/err" &&
            "$cli" report "$d/32.report" --no-symbolize >"$d/32.txt" 2>>"$d/err" || { show stderr "$d/err"; return 1; }
        grep -q "stack cut at 64 frames)" "$d/at-max.txt" && ! grep -q -- "--depth" "$d/at-max.txt" ||
            { echo "    at the maximum depth:"; grep "stack cut" "$d/at-max.txt"; return 1; }
        grep -q "stack cut at 32 frames; --depth records more" "$d/32.txt" ||
            { echo "    at depth 32:"; grep "stack cut" "$d/32.txt"; return 1; }
        echo "    --depth advised below the library's maximum only"
    }
    check "report/a stack cut at the library's maximum depth does not advise --depth" max_depth_case

    # Figures and words: units roll over as printed, one site holds, one sample,
    # timeline labels aligned; a sampled mean out of range is malformed; options
    # a format ignores are named.
    wording_case() {
        local d="$work/wording.d" problems=()
        mkdir -p "$d"
        mini_profile "$d/w.report" "site 1 1 0x1800" "stat 1 1 1048575 0 1 1048575 1048576 1048575 1" \
            "sample 1000 1048575 1048576"
        "$cli" report "$d/w.report" --no-symbolize >"$d/w.txt" 2>"$d/err" || { show stderr "$d/err"; return 1; }
        grep -q "1 site holds 1.00 MiB (1,048,575 B)" "$d/w.txt" || problems+=("no '1 site holds 1.00 MiB'")
        grep -q "1 sample over" "$d/w.txt" || problems+=("no '1 sample over'")
        python3 - "$d/w.txt" <<'PY' || problems+=("timeline axis labels are not aligned")
import sys
lines = open(sys.argv[1]).read().splitlines()
i = next(k for k, l in enumerate(lines) if l.startswith("TIMELINE:"))
axis = {l.find("|") if "|" in l else l.find("+") for l in lines[i + 1:i + 12]}
sys.exit(0 if len(axis) == 1 else 1)
PY
        mini_profile "$d/k.report" "site 1 1 0x1800" "stat 1 1 10239 0 1 10239 10240 10239 1"
        "$cli" report "$d/k.report" --no-symbolize >"$d/k.txt" 2>"$d/err" || { show stderr "$d/err"; return 1; }
        grep -q "10.0 KiB live" "$d/k.txt" || problems+=("10,239 B is not '10.0 KiB'")
        sed 's/^mode full$/mode sampled -5/' "$d/k.report" >"$d/neg.report"
        "$cli" report "$d/neg.report" --no-symbolize >"$d/neg.txt" 2>"$d/err" || { show stderr "$d/err"; return 1; }
        grep -q "skipped 1 malformed line (line 4)" "$d/neg.txt" || problems+=("mode sampled -5 is not malformed")
        "$cli" report "$d/k.report" --no-symbolize --format collapsed --top 3 >/dev/null 2>"$d/err"
        grep -q "warning: --top has no effect on collapsed output" "$d/err" || problems+=("--top with collapsed: no warning")
        "$cli" report "$d/k.report" --no-symbolize --metric alloc-count >/dev/null 2>"$d/err"
        grep -q "warning: --metric has no effect on text output" "$d/err" || problems+=("--metric with text: no warning")
        problems_or_pass report "$d/w.txt" || return 1
        echo "    1.00 MiB, 10.0 KiB, singulars, aligned labels, mean range-checked, ignored options named"
    }
    check "report/figures, words and ignored options" wording_case

    # A full profile against a sampled one compares exact figures with estimates.
    diff_modes_case() {
        "$cli" diff "$fx/a.report" "$fx/sampled.report" --no-symbolize >/dev/null 2>"$work/err" || { show stderr "$work/err"; return 1; }
        grep -q "warning: A records every allocation and B is sampled" "$work/err" || { show stderr "$work/err"; return 1; }
        echo "    $(head -1 "$work/err")"
    }
    check "report/diff of a full and a sampled profile warns" diff_modes_case

    # A profile with many distinct stacks (a program with deep, branching
    # recursion has millions): every format and diff finish in time, which a
    # reader with costs that grow faster than the file does not, and the figures
    # are still those of the file. 40,000 sites of 17 frames from a module that
    # cannot be read (frames are module+offset, so no two sites merge).
    many_sites_case() {
        local d="$work/many_sites.d" f rc problems=()
        mkdir -p "$d"
        python3 - "$d/many.report" "$d/expected.json" 40000 <<'PY'
import json, sys
path, expected, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
totals = dict(alloc_count=0, alloc_bytes=0, free_count=0, live_count=0, live_bytes=0,
              live_held_bytes=0, peak_live_bytes=0, peak_live_count=0)
live_sites = 0
with open(path, "w") as f:
    f.write("swiftmalloc-profile 1\npid 78\ncommand ./many\nmode full\ndepth 32\nunwinder libunwind\n"
            "elapsed_ns 5000000\nreason exit\nmodule 0x400000 0x500000 0x0 /nonexistent/many-sites\n")
    for i in range(1, n + 1):
        # Level k calls level k+1 from one of two places, chosen by bit k of i.
        frames = [0x401000 + 0x100 * k + 0x10 * ((i >> k) & 1) for k in range(16)] + [0x480000]
        f.write("site %d %d %s\n" % (i, len(frames), " ".join(hex(a) for a in frames)))
        allocs, size = 1 + i % 3, 16 * (1 + i % 5)
        live = i % 2
        s = [allocs, allocs * size, allocs - live, live, live * size, live * 16 * ((size + 15) // 16),
             live * size, live]
        f.write("stat %d %s\n" % (i, " ".join(map(str, s))))
        for k, v in zip(totals, s):
            totals[k] += v
        live_sites += live
    f.write("sample 1000000 100 4096\nend\n")
json.dump(dict(totals=totals, sites=n, live_sites=live_sites), open(expected, "w"))
PY
        for f in text json collapsed svg; do
            timeout 60 "$cli" report "$d/many.report" --no-symbolize --format "$f" -o "$d/many.$f" 2>"$d/err"
            rc=$?
            [ "$rc" -eq 0 ] || problems+=("report --format $f: exit status $rc (124: not done in 60 s)")
        done
        timeout 60 "$cli" report "$d/many.report" --format json -o "$d/many-sym.json" 2>"$d/err" ||
            problems+=("report --format json (symbolized): exit status $? (124: not done in 60 s)")
        timeout 60 "$cli" diff "$d/many.report" "$d/many.report" --format json -o "$d/diff.json" 2>"$d/err" ||
            problems+=("diff --format json: exit status $? (124: not done in 60 s)")
        if [ ${#problems[@]} -gt 0 ]; then
            printf '    %s\n' "${problems[@]}"
            show stderr "$d/err"
            return 1
        fi
        python3 - "$d" <<'PY'
import json, os, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
want = json.load(open(os.path.join(d, "expected.json")))
problems = []
for name in ("many.json", "many-sym.json"):
    r = json.load(open(os.path.join(d, name)))
    if len(r["sites"]) != want["sites"]:
        problems.append("%s: %d sites, the file has %d" % (name, len(r["sites"]), want["sites"]))
    if r["totals"] != want["totals"]:
        problems.append("%s: totals %s, the file says %s" % (name, r["totals"], want["totals"]))
    if len(r["live_sites"]) != want["live_sites"]:
        problems.append("%s: %d live sites, the file has %d" % (name, len(r["live_sites"]), want["live_sites"]))
    if any(len(s["frames"]) != 17 for s in r["sites"]):
        problems.append("%s: a site without its 17 frames" % name)
    sums = {k: sum(s[k] for s in r["sites"]) for k in want["totals"]}
    if sums != want["totals"]:
        problems.append("%s: the sites add up to %s" % (name, sums))
text = open(os.path.join(d, "many.text")).read()
if "LIVE AT EXIT (leaks): {:,} sites hold".format(want["live_sites"]) not in text:
    problems.append("text: no 'LIVE AT EXIT (leaks): {:,} sites hold'".format(want["live_sites"]))
folded = open(os.path.join(d, "many.collapsed")).read().splitlines()
if len(folded) != want["live_sites"] or sum(int(l.rsplit(" ", 1)[1]) for l in folded) != want["totals"]["live_bytes"]:
    problems.append("collapsed: %d lines, not one per live site with their live bytes" % len(folded))
if folded != sorted(folded):
    problems.append("collapsed: lines not in order")
frames = sum(1 for e in ET.parse(os.path.join(d, "many.svg")).iter() if e.get("class") == "f")
if frames < 100:
    problems.append("svg: only %d frames drawn" % frames)
diff = json.load(open(os.path.join(d, "diff.json")))
if len(diff["sites"]) != want["sites"] or any(s["status"] != "both" or any(s["delta"].values())
                                               for s in diff["sites"]):
    problems.append("diff of the file with itself: not every site in both, unchanged")
for p in problems:
    print("    " + p)
if problems:
    sys.exit(1)
print("    {:,} sites: every format and diff in time; sites, totals, live sites, folded "
      "stacks and {:,} flame graph frames agree with the file".format(want["sites"], frames))
PY
    }
    check "report/a profile with 40,000 distinct stacks: every format and diff in time, figures kept" many_sites_case
fi

# ---------------------------------------------------------------------------
# run/*: the command runner
# ---------------------------------------------------------------------------
exit_case() {
    local rc
    (cd "$work" && SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run --report "$work/exit.%p" -- sh -c 'exit 3') \
        >"$work/out" 2>"$work/err"
    rc=$?
    [ "$rc" -eq 3 ] || { echo "    exit status $rc, expected 3"; show stderr "$work/err"; return 1; }
    (cd "$work" && SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run --report "$work/exit.%p" -- true) >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || { echo "    exit status $rc for true, expected 0"; return 1; }
    # (in a group with stderr discarded: bash reports "Terminated" for the subshell)
    { (cd "$work" && SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run --report "$work/exit.%p" -- \
        /bin/bash -c 'kill -TERM $$') >/dev/null 2>&1; } 2>/dev/null
    rc=$?
    [ "$rc" -eq 143 ] || { echo "    exit status $rc for a command killed by SIGTERM, expected 143"; return 1; }
    (cd "$work" && SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run -- no-such-command-here) >/dev/null 2>"$work/err"
    rc=$?
    [ "$rc" -eq 127 ] && grep -q "command not found" "$work/err" ||
        { echo "    status $rc for a missing command, expected 127 and 'command not found'"; return 1; }
    echo "    statuses 3, 0, 143 (SIGTERM) and 127 (not found) passed through"
}
check "run/exit status passed through (6)" exit_case

# The shell that `sh -c` starts (dash) ends with _exit: its own profile is still
# the one shown. A --report that names no file is refused before anything runs.
run_paths_case() {
    local dir="$work/run_paths.d"
    mkdir -p "$dir"
    (cd "$dir" && SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run --report "$dir/sh.%p" -- sh -c 'ls / | sort >/dev/null') \
        >"$dir/out" 2>"$dir/err" || { show stderr "$dir/err"; return 1; }
    grep -q "^swiftmalloc: profile of pid [0-9]*: " "$dir/err" && grep -q "^  command   sh -c" "$dir/err" ||
        { echo "    no profile of the shell itself"; show stderr "$dir/err"; return 1; }
    local rc=0
    SWIFTMALLOC_LIB="$lib" "$cli" run --report '' -- true >/dev/null 2>"$dir/err" || rc=$?
    [ "$rc" -eq 64 ] && grep -q "must name a file" "$dir/err" || { echo "    --report '': status $rc"; show stderr "$dir/err"; return 1; }
    rc=0
    SWIFTMALLOC_LIB="$lib" "$cli" run --report "$dir" -- true >/dev/null 2>"$dir/err" || rc=$?
    [ "$rc" -ne 0 ] && grep -q "names a directory" "$dir/err" || { echo "    --report DIR: status $rc"; show stderr "$dir/err"; return 1; }
    echo "    sh -c (dash, which ends with _exit) profiled; --report '' and a directory refused"
}
check "run/the shell's own profile; report paths that name no file" run_paths_case

streams_case() {
    local got
    got=$(printf 'through stdin\n' | SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run --report "$work/streams.%p" -- \
        /bin/bash -c 'cat; echo to-stderr >&2' 2>"$work/err")
    [ "$got" = "through stdin" ] || { echo "    stdout was '$got'"; return 1; }
    grep -q '^to-stderr$' "$work/err" || { echo "    the command's stderr was not passed through"; show stderr "$work/err"; return 1; }
    echo "    stdin, stdout and stderr passed through"
}
check "run/streams" streams_case

env_case() {
    local out
    out=$(cd "$work" && SWIFTMALLOC_LIB="$lib" LD_PRELOAD=/nonexistent-first.so "$cli" run --depth 7 -- \
        /usr/bin/env 2>/dev/null | grep -E '^(LD_PRELOAD|SWIFTMALLOC_[A-Z_]+)=' | sort)
    local want
    want=$(printf '%s\n' "LD_PRELOAD=/nonexistent-first.so:$lib" "SWIFTMALLOC_LIB=$lib" "SWIFTMALLOC_PROFILE=1" \
        "SWIFTMALLOC_PROFILE_DEPTH=7" "SWIFTMALLOC_PROFILE_QUIET=1" "SWIFTMALLOC_REPORT=$work/swiftmalloc.%p.report" | sort)
    [ "$out" = "$want" ] || { echo "    environment:"; echo "$out" | sed 's/^/      /'; echo "    expected:"; echo "$want" | sed 's/^/      /'; return 1; }
    out=$(SWIFTMALLOC_LIB="$lib" SWIFTMALLOC_PROFILE=1 "$cli" run --sample 4096 --report "$work/x.%p" -- /usr/bin/env 2>/dev/null |
        grep -E '^SWIFTMALLOC_PROFILE' | grep -v '^SWIFTMALLOC_PROFILE_QUIET=1$' | sort)
    [ "$out" = "SWIFTMALLOC_PROFILE_SAMPLE=4096" ] || { echo "    with --sample: $out"; return 1; }
    echo "    LD_PRELOAD appended; profile, depth, sample and report variables set"
}
check "run/environment" env_case

search_case() {
    local inst="$work/inst" out
    mkdir -p "$inst/bin" "$inst/lib"
    ln -sf "$cli" "$inst/bin/swiftmalloc"
    cp "$lib" "$inst/lib/libswiftmalloc.so"
    out=$(env -u SWIFTMALLOC_LIB "$inst/bin/swiftmalloc" run --report "$work/s.%p" -- /bin/bash -c 'echo "$LD_PRELOAD"' 2>"$work/err")
    [ "$out" = "$inst/lib/libswiftmalloc.so" ] || { echo "    LD_PRELOAD was '$out', expected $inst/lib/libswiftmalloc.so"; show stderr "$work/err"; return 1; }
    if SWIFTMALLOC_LIB="$work/none.so" "$cli" run -- true >/dev/null 2>"$work/err"; then
        echo "    a missing SWIFTMALLOC_LIB did not fail"; return 1
    fi
    grep -q "SWIFTMALLOC_LIB" "$work/err" || { show stderr "$work/err"; return 1; }
    rm -f "$inst/lib/libswiftmalloc.so" "$inst/bin/swiftmalloc"
    # A copy, not a link: the build folder the link points into has a library.
    cp "$cli" "$inst/bin/swiftmalloc"
    if env -u SWIFTMALLOC_LIB "$inst/bin/swiftmalloc" run -- true >/dev/null 2>"$work/err"; then
        echo "    no library anywhere, yet run did not fail"; return 1
    fi
    grep -q "cannot find libswiftmalloc.so" "$work/err" || { show stderr "$work/err"; return 1; }
    echo "    found in ../lib of the executable; clear errors when missing"
}
check "run/library search" search_case

fake_case() {
    "$CC" -shared -fPIC -O1 "$root/Tests/profile/fake-recorder.c" -o "$work/libfake.so" 2>"$work/err" ||
        { show compiler "$work/err"; return 1; }
    [ -f "${fx:-}/a.report" ] || { echo "    no fixture profile to copy"; return 1; }
    mkdir -p "$work/fake"
    local rc
    (cd "$work/fake" && SWIFTMALLOC_LIB="$work/libfake.so" FAKE_PROFILE_SOURCE="$fx/a.report" \
        timeout "$timeout_s" "$cli" run --top 3 -- /bin/bash -c 'echo $$ >"$0"; /bin/true; echo out; exit 4' \
        "$work/fake.pid") >"$work/out" 2>"$work/err"
    rc=$?
    local problems=()
    [ "$rc" -eq 4 ] || problems+=("exit status $rc, expected 4")
    [ "$(cat "$work/out")" = out ] || problems+=("stdout was '$(cat "$work/out")'")
    [ "$(ls "$work/fake" | grep -c '^swiftmalloc\.[0-9]*\.report$')" -eq 2 ] || problems+=("expected two profiles in the current directory")
    grep -q '^swiftmalloc: profile of pid [0-9]*: .*/fake/swiftmalloc\.[0-9]*\.report$' "$work/err" ||
        problems+=("no 'profile of pid' line")
    grep -q '^swiftmalloc: 1 other process wrote profiles' "$work/err" || problems+=("the child's profile is not listed")
    grep -q 'LIVE AT EXIT (leaks): 5 sites' "$work/err" || problems+=("no text report on stderr")
    grep -q '… 2 more sites' "$work/err" || problems+=("--top 3 not applied")
    # The direct child's profile is the one shown: the bash process, not /bin/true.
    local shown pid
    shown=$(sed -n 's/^swiftmalloc: profile of pid \([0-9]*\): .*/\1/p' "$work/err")
    pid=$(cat "$work/fake.pid")
    [ -n "$shown" ] && [ "$shown" = "$pid" ] || problems+=("showed pid '$shown', expected the parent $pid")
    problems_or_pass stderr "$work/err" || return 1
    echo "    forking command: the command's own profile shown, the child's listed"
}
check "run/choosing the profile (stand-in recorder)" fake_case

# The command's status is this tool's, even when its own messages cannot be
# written (stderr closed: the report and notes go nowhere).
closed_stderr_case() {
    local rc
    (cd "$work" && SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run --report "$work/closed.%p" -- sh -c 'exit 5' 2>&-) \
        >/dev/null
    rc=$?
    [ "$rc" -eq 5 ] || { echo "    exit status $rc with stderr closed, expected 5"; return 1; }
    echo "    stderr closed: status 5 passed through"
}
check "run/the command's status wins when the report cannot be written" closed_stderr_case

# Only profiles written by this run count: one left by an earlier run (within
# the same second, or rewritten in place) is neither shown nor listed.
stale_profiles_case() {
    local d="$work/stale.d" problems=() rc
    mkdir -p "$d"
    (cd "$d" && SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run --quiet -- sh -c 'exit 0') >/dev/null 2>&1
    # (in a group with stderr discarded: bash reports "Killed" for the subshell)
    { (cd "$d" && SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run -- sh -c 'kill -KILL $$') >/dev/null 2>"$d/killed.err"; } 2>/dev/null
    grep -q "showing the only profile" "$d/killed.err" && problems+=("a KILLed command was shown an earlier run's profile")
    grep -q "other process" "$d/killed.err" && problems+=("an earlier run's profile was listed for a KILLed command")
    grep -q "killed by signal 9" "$d/killed.err" || problems+=("no 'killed by signal 9' note")
    (cd "$d" && SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run -- true) >/dev/null 2>"$d/second.err"
    grep -q "other process" "$d/second.err" && problems+=("the run before's profile was listed as another process's")
    grep -q "^swiftmalloc: profile of pid" "$d/second.err" || problems+=("no profile of the second run")
    printf 'not a library\n' >"$d/text.so"
    for bad in "$d" "$d/text.so"; do
        SWIFTMALLOC_LIB="$bad" "$cli" run -- true >/dev/null 2>"$d/err"
        rc=$?
        [ "$rc" -ne 0 ] && grep -qE "SWIFTMALLOC_LIB is set to .*, which is not (a readable regular file|an ELF shared library)" "$d/err" ||
            problems+=("SWIFTMALLOC_LIB=$bad: status $rc, $(head -1 "$d/err")")
    done
    problems_or_pass "stderr of the KILLed run" "$d/killed.err" || return 1
    echo "    earlier runs' profiles ignored; SWIFTMALLOC_LIB must be an ELF regular file"
}
check "run/only profiles written during the run are shown; the library must be a file" stale_profiles_case

depth_limit_case() {
    local rc
    SWIFTMALLOC_LIB="$lib" "$cli" run --depth 65 -- true >/dev/null 2>"$work/err"
    rc=$?
    [ "$rc" -eq 64 ] && grep -q -- "--depth must be at most 64" "$work/err" ||
        { echo "    --depth 65: status $rc"; show stderr "$work/err"; return 1; }
    "$cli" run --help 2>&1 | grep -q "1 to 64" || { echo "    --help does not give the range of --depth"; return 1; }
    echo "    --depth 65 refused (status 64); --help says 1 to 64"
}
check "run/--depth above the library's maximum is refused" depth_limit_case

# SIGINT and SIGQUIT sent to this process (not its group) go on to the
# command; Ctrl-C at a terminal, which reaches the whole group, is not sent
# twice, and the command's profile tells of the signal.
signals_case() {
    local pid rc start
    SWIFTMALLOC_LIB="$lib" "$cli" run --quiet --report "$work/sig.%p" -- sleep 30 &
    pid=$!
    sleep 1
    start=$(date +%s)
    kill -INT "$pid"
    wait "$pid"
    rc=$?
    [ "$rc" -eq 130 ] && [ $(($(date +%s) - start)) -lt 10 ] ||
        { echo "    SIGINT to swiftmalloc: status $rc after $(($(date +%s) - start)) s, expected 130 at once"; return 1; }
    SWIFTMALLOC_LIB="$lib" "$cli" run --quiet --report "$work/sig.%p" -- sleep 30 &
    pid=$!
    sleep 1
    kill -QUIT "$pid"
    wait "$pid"
    rc=$?
    [ "$rc" -eq 131 ] || { echo "    SIGQUIT to swiftmalloc: status $rc, expected 131"; return 1; }
    SWIFTMALLOC_LIB="$lib" python3 - "$cli" "$work/tty.%p" <<'PY'
import os, pty, select, sys, time
cli, report = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(cli, [cli, "run", "--report", report, "--", "sleep", "30"])
time.sleep(1.5)
os.write(fd, b"\x03")  # Ctrl-C: the terminal signals the foreground group
out, start = b"", time.time()
while time.time() - start < 30:
    if select.select([fd], [], [], 1)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
status = 128 - code if code < 0 else code
text = out.decode("utf-8", "replace")
if status != 130 or "written as a signal ended it" not in text:
    print("    Ctrl-C at a terminal: status %d, expected 130 and the report of a signal" % status)
    print(text[-2000:])
    sys.exit(1)
PY
    echo "    SIGINT (130) and SIGQUIT (131) to swiftmalloc reach the command; Ctrl-C at a terminal still reports"
}
check "run/SIGINT and SIGQUIT sent to swiftmalloc reach the command" signals_case

# A command killed by a signal: the tool dies of the same signal, so that a
# parent's waitpid sees it (it exited 128+N for SIGSEGV, SIGABRT and SIGQUIT,
# which dump core), without a core file of its own (where the system writes
# core files into the working directory).
signal_status_case() {
    local d="$work/sigstatus.d"
    mkdir -p "$d"
    (cd "$d" && ulimit -c unlimited 2>/dev/null; SWIFTMALLOC_LIB="$lib" python3 - "$cli" "$d/r.%p" <<'PY'
import subprocess, sys
cli, report = sys.argv[1], sys.argv[2]
bad = []
for name, number in (("SEGV", 11), ("ABRT", 6), ("QUIT", 3), ("TERM", 15)):
    # The command dumps no core itself; the tool runs with core files allowed.
    r = subprocess.run([cli, "run", "--quiet", "--report", report, "--", "sh", "-c", "ulimit -c 0; kill -%s $$" % name])
    if r.returncode != -number:
        bad.append("%s: %d" % (name, r.returncode))
print("    killed by SEGV, ABRT, QUIT, TERM: " + (", ".join(bad) if bad else "the tool died of each"))
sys.exit(1 if bad else 0)
PY
    ) || return 1
    if ls "$d" | grep -q '^core'; then echo "    a core file was left: $(ls "$d")"; return 1; fi
}
check "run/dies of the signal that killed the command, with no core file of its own" signal_status_case

sigchld_ignored_case() {
    local rc
    SWIFTMALLOC_LIB="$lib" python3 -c '
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
os.execv(sys.argv[1], [sys.argv[1], "run", "--quiet", "--report", sys.argv[2], "--", "sh", "-c", "exit 3"])' \
        "$cli" "$work/chld.%p" >/dev/null 2>"$work/err"
    rc=$?
    [ "$rc" -eq 3 ] || { echo "    started with SIGCHLD ignored: status $rc, expected 3"; show stderr "$work/err"; return 1; }
    echo "    started with SIGCHLD ignored: status 3 passed through"
}
check "run/started with SIGCHLD ignored" sigchld_ignored_case

# An executable file that is no binary and has no #! line runs under /bin/sh,
# as execvp and shells run it.
script_case() {
    local out rc
    printf 'echo from the script\nexit 7\n' >"$work/plain-script"
    chmod +x "$work/plain-script"
    out=$(cd "$work" && SWIFTMALLOC_LIB="$lib" "$cli" run --quiet --report "$work/script.%p" -- ./plain-script 2>"$work/err")
    rc=$?
    [ "$rc" -eq 7 ] && [ "$out" = "from the script" ] ||
        { echo "    a script without #!: status $rc, output '$out'"; show stderr "$work/err"; return 1; }
    echo "    a script without #! ran under /bin/sh (status 7)"
}
check "run/an executable script without #! runs under /bin/sh" script_case

# ---------------------------------------------------------------------------
# profile/*: the recorder end to end
# ---------------------------------------------------------------------------
leaky="$work/leaky"
if ! "$CC" -O1 -g -fno-omit-frame-pointer -fno-inline -pthread "$root/Tests/profile/leaky.c" -o "$leaky" \
        >"$work/cc.log" 2>&1; then
    fail "profile/*: cannot compile Tests/profile/leaky.c"
    show compiler "$work/cc.log"
    echo "Profiler tests took $(($(date +%s) - start))s"
    summary
    exit
fi

# profile_run NAME [ENV=VALUE...] -- CLI-RUN-OPTIONS...: runs leaky under
# `swiftmalloc run` in $work/NAME; sets $profile to the command's own
# profile, or leaves it empty and explains why.
profile=
profile_run() {
    local name=$1 dir="$work/$1"
    shift
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    mkdir -p "$dir"
    profile=
    (cd "$dir" && env SWIFTMALLOC_LIB="$lib" "${envs[@]}" timeout "$timeout_s" "$cli" run --report "$dir/r.%p" "$@" -- "$leaky") \
        >"$dir/stdout" 2>"$dir/stderr"
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "    swiftmalloc run -- leaky: exit status $rc"
        show stderr "$dir/stderr"
        return 1
    fi
    profile=$(sed -n 's/^swiftmalloc: profile of pid [0-9]*: //p' "$dir/stderr")
    if [ -z "$profile" ] || [ ! -s "$profile" ]; then
        echo "    leaky ran (exit 0) but the library wrote no profile in $dir"
        echo "    (the library did not act on SWIFTMALLOC_PROFILE: is $lib built with the profiler?)"
        show "swiftmalloc stderr" "$dir/stderr"
        profile=
        return 1
    fi
    grep -q '^end$' "$profile" || { echo "    the profile $profile has no 'end' line"; return 1; }
}

exact_case() {
    profile_run exact -- || return 1
    cp "$profile" "$work/exact.report"
    "$cli" report "$profile" --format json >"$work/exact.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    python3 "$checks" leaks "$work/exact.json" 1 || { show "text report" "$work/exact/stderr"; return 1; }
}
check "profile/exact live bytes and counts at exit (1)" exact_case

sampled_case() {
    profile_run sampled LEAKY_MANY=20000 -- --sample 4096 || return 1
    "$cli" report "$profile" --format json >"$work/sampled.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    python3 "$checks" sampled "$work/sampled.json" leak_many 20000000 0.15
}
check "profile/sampled estimate within 15% (2)" sampled_case

# Full profiling counts each thread's events in a tally of its own, merged into
# the shared counters every few hundred events: a report must still count the
# blocks of a thread that waits with its counts unmerged, on request and at exit.
# tally_run NAME [ARG...]: compiles Tests/profile/NAME.c and runs it with every
# allocation recorded; its profile at exit goes to $work/NAME.d/exit.report.
# build_profile_prog NAME [FLAGS...]: compiles Tests/profile/NAME.c to $work/NAME
# (once) and makes its directory $work/NAME.d.
# live_check LABEL REPORT FUNCTION BYTES COUNT: REPORT's live blocks allocated in
# FUNCTION are exactly BYTES in COUNT blocks (printed after LABEL).
live_check() {
    "$cli" report "$2" --format json >"$2.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    echo -n "    $1:"
    python3 "$checks" live "$2.json" "$3" "$4" "$5"
}
build_profile_prog() {
    local name=$1
    shift
    mkdir -p "$work/$name.d"
    [ -x "$work/$name" ] || "$CC" -O2 -g "$@" "$root/Tests/profile/$name.c" -o "$work/$name" >"$work/$name-cc.log" 2>&1 ||
        { show compiler "$work/$name-cc.log"; return 1; }
}
tally_run() {
    local name=$1
    shift
    local prog="$work/$name" dir="$work/$name.d"
    build_profile_prog "$name" -pthread || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/exit.report" "$prog" "$@" >"$dir/out" 2>&1 ||
        { show "$name" "$dir/out"; return 1; }
}
waiting_case() {
    local dir="$work/waiting.d"
    tally_run waiting "$dir/request.report" || return 1
    local which
    for which in request exit; do
        "$cli" report "$dir/$which.report" --format json >"$dir/$which.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        echo -n "    $which:"
        python3 "$checks" live "$dir/$which.json" held_by_waiting_thread 10000 10 || return 1
    done
}
check "profile/a waiting thread's blocks are in the report, on request and at exit" waiting_case

# Four threads whose blocks are often freed by another thread (so one block's
# allocation and free are counted in different tallies), two still waiting at
# exit: the leaks are exact and nothing churned is left live.
tallies_case() {
    local dir="$work/tallies.d"
    tally_run tallies || return 1
    "$cli" report "$dir/exit.report" --format json >"$dir/exit.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    # A count gone below zero would have been written as a huge number, which the reader skips.
    if [ -s "$work/err" ]; then show "report reader's warnings" "$work/err"; return 1; fi
    echo -n "    leaks:"
    python3 "$checks" live "$dir/exit.json" leak_from_worker 20000 100 100 || return 1
    echo -n "    churn:"
    python3 "$checks" live "$dir/exit.json" churn_block 0 0 200000 || return 1
    grep -q "^heap [0-9]* [0-9]* [0-9]* [0-9]\{1,12\} " "$dir/exit.report" || { echo "    the heap's peak is not a plausible count:"; grep "^heap" "$dir/exit.report"; return 1; }
}
check "profile/exact counts with cross-thread frees and threads waiting at exit" tallies_case

# A program that closes every descriptor above 2 and opens its own files until one
# takes number 100, the allocator's duplicate of stderr: the exit summary and
# statistics must not land in that file; stderr (unchanged) gets them instead.
stderr_reuse_case() {
    local prog="$work/stderr_reuse" dir="$work/stderr_reuse.d"
    build_profile_prog stderr_reuse || return 1
    rm -f "$dir/data"
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_STATS=1 \
        SWIFTMALLOC_REPORT="$dir/exit.report" "$prog" "$dir/data" >"$dir/out" 2>"$dir/err" ||
        { show stderr_reuse "$dir/err"; return 1; }
    [ "$(cat "$dir/data")" = "DATA" ] || { show "the program's file (should hold DATA alone)" "$dir/data"; return 1; }
    grep -q "^swiftmalloc: profile of pid" "$dir/err" && grep -q "statistics for pid" "$dir/err" ||
        { show "stderr (no summary or statistics)" "$dir/err"; return 1; }
    "$cli" report "$dir/exit.report" --format json >"$dir/exit.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    echo -n "    kept:"
    python3 "$checks" live "$dir/exit.json" keep_block 100 1
}
check "profile/exit reports never write into a file that took their descriptor" stderr_reuse_case

# Eight children sharing one report path (no %p) exit together: the path holds one
# whole report (Tests/profile/shared_path.c checks it), which the CLI reads.
shared_path_case() {
    local prog="$work/shared_path" dir="$work/shared_path.d"
    build_profile_prog shared_path -pthread -ldl || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/shared.report" "$prog" "$dir/shared.report" >"$dir/out" 2>&1 ||
        { show shared_path "$dir/out"; return 1; }
    "$cli" report "$dir/shared.report" --format json >"$dir/shared.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    # Four threads asking for reports at that path at once.
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/exit.report" "$prog" "$dir/shared.report" threads >>"$dir/out" 2>&1 ||
        { show shared_path "$dir/out"; return 1; }
    sed 's/^/    /' "$dir/out"
}
check "profile/processes and threads sharing one report path leave one whole report" shared_path_case

# A report path that is not a regular file is written through, never replaced:
# a symbolic link stays a link (its target gets the report), a named pipe stays a
# pipe (its reader gets the report), and /dev/null stays a device.
special_paths_case() {
    local dir="$work/special.d"
    mkdir -p "$dir"
    ln -s "$dir/target.report" "$dir/link.report"
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/link.report" ls / >/dev/null 2>"$dir/err" || { show stderr "$dir/err"; return 1; }
    [ -L "$dir/link.report" ] || { echo "    the symbolic link was replaced by a file"; return 1; }
    [ "$(head -n 1 "$dir/target.report" 2>/dev/null)" = "swiftmalloc-profile 1" ] && [ "$(tail -n 1 "$dir/target.report")" = end ] ||
        { echo "    the link's target holds no whole report"; return 1; }
    mkfifo "$dir/pipe"
    timeout "$timeout_s" cat "$dir/pipe" >"$dir/pipe.out" &
    local reader=$!
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/pipe" ls / >/dev/null 2>"$dir/err" || { show stderr "$dir/err"; kill "$reader" 2>/dev/null; return 1; }
    wait "$reader"
    [ -p "$dir/pipe" ] || { echo "    the named pipe was replaced by a file"; return 1; }
    [ "$(head -n 1 "$dir/pipe.out")" = "swiftmalloc-profile 1" ] && [ "$(tail -n 1 "$dir/pipe.out")" = end ] ||
        { echo "    the pipe's reader got no whole report"; return 1; }
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT=/dev/null ls / >/dev/null 2>"$dir/err" || { show stderr "$dir/err"; return 1; }
    [ -c /dev/null ] || { echo "    /dev/null is no longer a character device"; return 1; }
    echo "    a symbolic link, a named pipe and /dev/null as report paths: written through, left as they were"
}
check "profile/report paths that are not regular files are written through" special_paths_case

# The purge thread starts inside the program's allocation that grows the heap:
# glibc's allocations for it (the thread's TLS, its attribute's signal mask) are
# the library's own, not the program's (Tests/profile/helper_start.c makes 68
# allocations and keeps 3 blocks of 1000 B), in full and in sampled mode.
helper_start_case() {
    local prog="$work/helper_start" dir="$work/helper_start.d" mode
    build_profile_prog helper_start || return 1
    for mode in SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_SAMPLE=1; do
        timeout "$timeout_s" env LD_PRELOAD="$lib" "$mode" SWIFTMALLOC_PROFILE_QUIET=1 \
            SWIFTMALLOC_REPORT="$dir/r.report" "$prog" >"$dir/out" 2>&1 || { show output "$dir/out"; return 1; }
        grep -qx 'threads 2' "$dir/out" || { echo "    $mode: the purge thread did not start"; show output "$dir/out"; return 1; }
        "$cli" report "$dir/r.report" --format collapsed --metric alloc-count >"$dir/folded" 2>"$work/err" ||
            { show stderr "$work/err"; return 1; }
        "$cli" report "$dir/r.report" --format json >"$dir/json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        local totals
        totals=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"]; print(t["alloc_count"], t["live_count"], t["live_bytes"])' "$dir/json")
        echo "    $mode: $totals (allocations, live blocks, live bytes); $(grep -c . "$dir/folded") stacks"
        [ "$totals" = "68 3 3000" ] && ! grep -q -E 'allocate_stack|pthread_attr' "$dir/folded" ||
            { show "folded stacks" "$dir/folded"; return 1; }
    done
}
check "profile/the library's thread start is not counted at the program's sites" helper_start_case

# Reallocs in place are allocations of the new size in sampled mode too, and the
# heap's requested bytes (estimates in sampled mode, exact at one sample per byte)
# and their peak are the program's: the library's own blocks are not in them, in
# the report nor in the summary line at exit (Tests/profile/realloc_chain.c).
realloc_chain_case() {
    local prog="$work/realloc_chain" dir="$work/realloc_chain.d" mode figures
    build_profile_prog realloc_chain || return 1
    for mode in SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_SAMPLE=1; do
        timeout "$timeout_s" env LD_PRELOAD="$lib" "$mode" SWIFTMALLOC_REPORT="$dir/r.report" "$prog" >"$dir/out" 2>&1 ||
            { show output "$dir/out"; return 1; }
        "$cli" report "$dir/r.report" --format json >"$dir/json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        figures=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["totals"]; h=d["heap"]
print(t["alloc_count"], t["free_count"], t["live_count"], t["live_bytes"], h["requested_bytes"], t["peak_live_bytes"], h["peak_requested_bytes"])' "$dir/json")
        echo "    $mode: $figures (allocations, frees, live blocks, live bytes, heap requested; peak by sites, heap peak); $(grep -o 'peak [0-9.]* [KMG]*i*B' "$dir/out")"
        [ "$figures" = "3930 3928 2 24128 24128 40961 40961" ] || return 1
        grep -q 'peak 40.0 KiB$' "$dir/out" || { show output "$dir/out"; return 1; }
    done
}
check "profile/reallocs in place, and the heap's requested bytes and peak, in full and sampled mode" realloc_chain_case

# Threads taking turns with one 256 KiB block each: the heap's peak is one block,
# not the blocks of every thread whose free was not merged yet (it read 16 of them:
# 4.0 MiB requested at a peak of 316 KiB held; Tests/profile/peak_threads.c).
peak_threads_case() {
    local prog="$work/peak_threads" dir="$work/peak_threads.d" figures
    build_profile_prog peak_threads -pthread || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/r.report" "$prog" >"$dir/out" 2>&1 || { show output "$dir/out"; return 1; }
    "$cli" report "$dir/r.report" --format json >"$dir/json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    figures=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["heap"]
print(h["peak_requested_bytes"], h["peak_held_bytes"])' "$dir/json")
    echo "    peak: $figures (requested, held)"
    set -- $figures
    [ "$1" -ge 262144 ] && [ "$1" -lt 393216 ] && [ "$1" -le "$2" ]
}
check "profile/the heap's peak while threads take turns with their blocks" peak_threads_case

# A sampling rate that is no positive number is named, not silently ignored (the
# program then ran unprofiled with no word of why no report came).
bad_sample_case() {
    local v out
    for v in abc 0 -5; do
        out=$(SWIFTMALLOC_PROFILE_SAMPLE=$v SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT="$work/bad.%p" \
            LD_PRELOAD="$lib" ls / 2>&1 >/dev/null)
        [ "$out" = "swiftmalloc: SWIFTMALLOC_PROFILE_SAMPLE is not a positive number of bytes: profiling is off" ] ||
            { echo "    SWIFTMALLOC_PROFILE_SAMPLE=$v: '$out'"; return 1; }
    done
    ls "$work"/bad.* >/dev/null 2>&1 && { echo "    a report was written"; return 1; }
    echo "    abc, 0, -5: named on stderr, no profile"
}
check "profile/a sampling rate that is no number is named" bad_sample_case

# Sampled estimates without bias where a sample stands for a fraction of a block
# more (blocks as large as the mean gap), and for realloc(NULL, n), which the
# sampler missed (Tests/profile/sampled_weights.c).
sampled_weights_case() {
    local prog="$work/sampled_weights" dir="$work/sampled_weights.d"
    build_profile_prog sampled_weights || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE_SAMPLE=65536 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/r.report" "$prog" >"$dir/out" 2>&1 || { show output "$dir/out"; return 1; }
    "$cli" report "$dir/r.report" --format json >"$dir/r.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    python3 "$checks" sampled-allocs "$dir/r.json" grow_from_null 1000000 64000000 0.12 || return 1
    python3 "$checks" sampled-allocs "$dir/r.json" mean_sized 2000 131072000 0.12
}
check "profile/sampled estimates of realloc(NULL) and of blocks the size of the gap" sampled_weights_case

# A signal handler's allocations: the frame between the handler and the code it
# interrupted is the kernel's signal return trampoline, named as such (glibc's
# __restore_rt), not the function before it (Tests/profile/signal_frame.c).
# profiled_folded NAME: builds Tests/profile/NAME.c, runs it under full profiling
# into $work/NAME.d/r.report, and writes its folded stacks of live bytes to
# $work/NAME.d/folded.
profiled_folded() {
    local name=$1 dir="$work/$1.d"
    build_profile_prog "$name" || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/r.report" "$work/$name" >"$dir/out" 2>&1 || { show output "$dir/out"; return 1; }
    "$cli" report "$dir/r.report" --format collapsed --metric live-bytes >"$dir/folded" 2>"$work/err" ||
        { show stderr "$work/err"; return 1; }
}

signal_frame_case() {
    local dir="$work/signal_frame.d" stack
    profiled_folded signal_frame || return 1
    stack=$(grep ';on_signal;allocate_in_handler 5550$' "$dir/folded")
    echo "    ${stack:-no stack through the handler with 5550 bytes}"
    case "$stack" in
    *';raise_signals;'*';__restore_rt;on_signal;allocate_in_handler 5550') ;;
    *) show "folded stacks" "$dir/folded"; return 1 ;;
    esac
}
check "profile/a signal handler's stacks name the signal trampoline" signal_frame_case

# A coroutine's allocations: its stack ends at glibc's __start_context, named as
# such, not after the function before it (Tests/profile/coroutine.c), whether the
# frames were walked by the learned rules (compared with libunwind's walk in
# check mode) or by libunwind.
coroutine_case() {
    local dir="$work/coroutine.d" walk stack
    for walk in "" check libunwind; do
        SWIFTMALLOC_PROFILE_WALK=$walk profiled_folded coroutine || return 1
        stack=$(grep ';coroutine_body;keep_from_coroutine 7770$' "$dir/folded")
        echo "    ${walk:-cached}: ${stack:-no stack through the coroutine with 7770 bytes}"
        [ "$stack" = "__start_context;coroutine_body;keep_from_coroutine 7770" ] ||
            { show "folded stacks" "$dir/folded"; return 1; }
        if [ "$walk" = check ]; then
            grep -q 'cached walks compared with libunwind, 0 differed' "$dir/out" || { show output "$dir/out"; return 1; }
        fi
    done
}
check "profile/a coroutine's stacks end at the context start" coroutine_case

# A program that allocates rarely (twenty blocks 10 ms apart) still has its peak
# in the timeline (Tests/profile/timeline_sparse.c).
timeline_sparse_case() {
    local prog="$work/timeline_sparse" dir="$work/timeline_sparse.d" points highest
    build_profile_prog timeline_sparse || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/r.report" "$prog" >"$dir/out" 2>&1 || { show output "$dir/out"; return 1; }
    points=$(grep -c '^sample ' "$dir/r.report")
    highest=$(awk '/^sample /{if ($3 > m) m = $3} END {print m + 0}' "$dir/r.report")
    echo "    $points timeline points, the highest at $highest bytes requested"
    [ "$highest" -ge 2000000 ] || return 1
}
check "profile/the timeline shows the peak of a program that allocates rarely" timeline_sparse_case

# An ending signal that lands in a thread holding one of the allocator's locks
# (most of them, in a program whose threads all allocate): the reports are written
# as the thread releases its last lock, then the signal ends the process (once
# most such runs wrote nothing). Six runs, SIGTERM, SIGINT and SIGHUP twice each
# (Tests/profile/signal_busy.c).
signal_busy_case() {
    local prog="$work/signal_busy" dir="$work/signal_busy.d" s n pid status runner whole=0 runs=0
    build_profile_prog signal_busy -pthread || return 1
    for s in TERM INT HUP TERM INT HUP; do
        runs=$((runs + 1))
        rm -f "$dir"/*
        # A background job of a script starts with SIGINT ignored: env puts back the
        # default actions, so that the library installs its report handlers. The
        # subshell records the exit status (and keeps the shell's note of a job
        # ended by a signal out of the output).
        ( exec 2>/dev/null
          env --default-signal=INT,TERM,HUP LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
              SWIFTMALLOC_REPORT="$dir/r.report" "$prog" >"$dir/out" 2>"$dir/err"
          echo $? >"$dir/status" ) &
        runner=$!
        pid=
        for n in $(seq 100); do pid=$(sed -n 's/^ready //p' "$dir/out" 2>/dev/null); [ -n "$pid" ] && break; sleep 0.05; done
        [ -n "$pid" ] || { echo "    the program did not start"; return 1; }
        sleep 0.3
        kill -s "$s" "$pid"
        # At most 20 s for the reports and the end; then it is killed, a failure.
        for n in $(seq 200); do [ -s "$dir/status" ] && break; sleep 0.1; done
        [ -s "$dir/status" ] || { kill -9 "$pid"; echo "    SIG$s: still running 20 s after the signal"; sleep 0.5; }
        wait "$runner"
        status=$(cat "$dir/status" 2>/dev/null || echo 0)
        n=$(kill -l "$s")
        if [ "$status" -ne $((128 + n)) ]; then
            echo "    SIG$s: exit status $status, expected $((128 + n))"; show stderr "$dir/err"; return 1
        fi
        if grep -q '^reason signal' "$dir/r.report" 2>/dev/null && [ "$(tail -n 1 "$dir/r.report")" = end ]; then
            whole=$((whole + 1))
        else
            echo "    SIG$s: no whole profile ($(ls "$dir" | tr '\n' ' '))"
        fi
    done
    echo "    $whole of $runs runs ended by the signal wrote their whole profile"
    [ "$whole" -eq "$runs" ]
}
check "profile/a signal that lands in a thread holding an allocator lock still writes the profile" signal_busy_case

# Inlined functions are frames of their own, with their lines (addr2line -i):
# Tests/profile/inlined.c leaks from a function inlined into another.
inlined_case() {
    local dir="$work/inlined.d" stack
    profiled_folded inlined || return 1
    stack=$(grep ' 4242$' "$dir/folded")
    echo "    ${stack:-no stack with the 4242-byte leak}"
    case "$stack" in *';main;outer_function;keep_block 4242') ;; *) show "folded stacks" "$dir/folded"; return 1 ;; esac
    "$cli" report "$dir/r.report" >"$dir/text" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    grep -q 'keep_block.*inlined\.c:14' "$dir/text" || { show report "$dir/text"; return 1; }
}
check "profile/functions the compiler inlined are frames of their own" inlined_case

# A report that cannot be written whole (here a file size limit) is an error
# (-1, EFBIG) and leaves the earlier report at the path (Tests/profile/write_errors.c).
write_errors_case() {
    local prog="$work/write_errors" dir="$work/write_errors.d"
    build_profile_prog write_errors || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/exit.report" "$prog" "$dir/asked.report" >"$dir/out" 2>&1 ||
        { show output "$dir/out"; return 1; }
    sed 's/^/    /' "$dir/out"
    # Under a 1 KiB file size limit (SIGXFSZ left at its default, which ends the
    # process) the exit report fails cleanly: ls exits 0, one message, no file left.
    local status=0
    timeout "$timeout_s" sh -c 'ulimit -f 1; exec env LD_PRELOAD="$1" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_REPORT="$2" ls /' \
        sh "$lib" "$dir/limited.report" >/dev/null 2>"$dir/limited.err" || status=$?
    local left
    left=$(cd "$dir" && ls | grep -c '^limited\.report')
    echo "    ls under ulimit -f 1: exit status $status, $left file(s) left; $(grep -c 'could not write the report' "$dir/limited.err") message(s)"
    [ "$status" -eq 0 ] && [ "$left" -eq 0 ] && grep -q 'could not write the report' "$dir/limited.err" ||
        { show stderr "$dir/limited.err"; return 1; }
}
check "profile/a report that cannot be written whole fails and keeps the earlier one" write_errors_case

# A child killed the moment it is forked (Tests/profile/fork_signal.c): the
# report handler notes a signal that arrives while the child's fork handler
# holds its inherited locks, and must deliver it once they are released, not
# drop it with the locks (statistics, full and sampled profiling).
fork_signal_case() {
    local prog="$work/fork_signal" dir="$work/fork_signal.d" mode
    build_profile_prog fork_signal || return 1
    for mode in SWIFTMALLOC_STATS=1 SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_SAMPLE=4096; do
        # shellcheck disable=SC2086
        timeout "$timeout_s" env LD_PRELOAD="$lib" $mode SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT=/dev/null \
            "$prog" 20 >"$dir/out" 2>/dev/null || { echo "    $mode:"; show output "$dir/out"; return 1; }
        echo "    $mode: $(cat "$dir/out")"
    done
}
check "profile/a signal sent to a child as it is forked ends it" fork_signal_case

# A program started with stdin closed (a daemon, a child spawned with close
# actions) must find it closed: libunwind's address-check pipe, opened at its
# first walk, must not take descriptor 0.
closed_stdin_case() {
    local dir="$work/closed_stdin.d" mode out
    mkdir -p "$dir"
    printf '#include <errno.h>\n#include <fcntl.h>\n#include <stdio.h>\n#include <stdlib.h>\nvoid *kept[100]; int main(void) { for (int i = 0; i < 100; i++) kept[i] = malloc(100 + i); int closed = fcntl(0, F_GETFD) == -1 && errno == EBADF; printf("stdin %%s\\n", closed ? "closed" : "open"); return !closed; }\n' >"$dir/prog.c"
    "$CC" -O1 "$dir/prog.c" -o "$dir/prog" >"$dir/cc.log" 2>&1 || { show compiler "$dir/cc.log"; return 1; }
    for mode in SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_SAMPLE=4096 "SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_WALK=libunwind"; do
        # shellcheck disable=SC2086
        out=$(timeout "$timeout_s" env LD_PRELOAD="$lib" $mode SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT=/dev/null \
            "$dir/prog" <&- 2>&1) || { echo "    $mode: $out"; return 1; }
        echo "    $mode: $out"
    done
}
check "profile/a program started with stdin closed finds it closed" closed_stdin_case

# A program that dup2s files onto the numbers of libunwind's address-check pipe
# (Tests/profile/fd_reuse.c), as Java's process launcher does before exec: the
# profiler must not read, write or close them, in any mode that may call libunwind.
fd_reuse_case() {
    local prog="$work/fd_reuse" dir="$work/fd_reuse.d" mode status
    build_profile_prog fd_reuse || return 1
    for mode in SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_SAMPLE=1 "SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_WALK=libunwind" \
                "SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_WALK=check"; do
        status=0
        # shellcheck disable=SC2086
        timeout "$timeout_s" env LD_PRELOAD="$lib" $mode SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT="$dir/r.%p" \
            "$prog" "$dir/file" >"$dir/out" 2>&1 || status=$?
        [ "$status" -eq 0 ] || { echo "    $mode: exit status $status"; show output "$dir/out"; return 1; }
        echo "    $mode: $(cat "$dir/out")"
    done
}
check "profile/files put under the numbers of libunwind's pipe stay the program's" fd_reuse_case

# A program that ends holding every descriptor it may have (a leak of them):
# the profile and the statistics file are still written, the soft descriptor
# limit raised by one while each is (Tests/profile/descriptors_exhausted.c).
descriptors_exhausted_case() {
    local prog="$work/descriptors_exhausted" dir="$work/descriptors_exhausted.d" status=0
    build_profile_prog descriptors_exhausted || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_STATS_FILE="$dir/stats" \
        SWIFTMALLOC_REPORT="$dir/r.report" "$prog" >"$dir/out" 2>&1 || status=$?
    [ "$status" -eq 0 ] || { echo "    exit status $status"; show output "$dir/out"; return 1; }
    grep -q '^total: held' "$dir/stats" 2>/dev/null || { echo "    no statistics file"; show output "$dir/out"; return 1; }
    grep -q '^swiftmalloc: report written to ' "$dir/out" || { echo "    no summary line"; show output "$dir/out"; return 1; }
    live_check "with every descriptor taken" "$dir/r.report" leak_at_exit 10000 20
}
check "profile/a program that ends holding every descriptor still gets its profile and statistics" descriptors_exhausted_case

# The temporary name a report is written under before it is renamed over its
# path is predictable: a symbolic link waiting there must not be written
# through (Tests/profile/planted_link.c), nor may `swiftmalloc report -o` follow
# one at its own temporary name.
planted_link_case() {
    local prog="$work/planted_link" dir="$work/planted_link.d"
    build_profile_prog planted_link || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/exit.report" "$prog" "$dir/asked.report" "$dir/victim" >"$dir/out" 2>&1 ||
        { show output "$dir/out"; return 1; }
    sed 's/^/    /' "$dir/out"
    # The report tool: its output goes to <out>.tmp-<pid>, with a link planted for
    # every pid the next command may get would be too many; plant it for the pid
    # of a shell that then execs the tool.
    printf 'the victim of the tool\n' >"$dir/victim2"
    timeout "$timeout_s" sh -c 'ln -s "$3" "$2.tmp-$$" && exec "$1" report "$4" --format json -o "$2"' \
        sh "$cli" "$dir/out.json" "$dir/victim2" "$dir/asked.report" >"$dir/cli.out" 2>&1 ||
        { show "swiftmalloc report" "$dir/cli.out"; return 1; }
    [ "$(cat "$dir/victim2")" = "the victim of the tool" ] && [ -f "$dir/out.json" ] && [ ! -L "$dir/out.json" ] &&
        python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$dir/out.json" ||
        { echo "    swiftmalloc report -o wrote through the planted link"; return 1; }
    echo "    swiftmalloc report -o: the planted link's target unchanged, the output a JSON file"
}
check "profile/reports never write through a link planted at their temporary name" planted_link_case

# _exit and _Exit write the profile first (dash ends that way, Python's
# multiprocessing workers too); vfork and posix_spawn children, which run in
# their parent's memory, write none (Tests/profile/underscore_exit.c).
underscore_exit_case() {
    local prog="$work/underscore_exit" dir="$work/underscore_exit.d"
    build_profile_prog underscore_exit || return 1
    local status=0
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/%p.report" "$prog" >"$dir/out" 2>&1 || status=$?
    [ "$status" -eq 3 ] || { echo "    exit status $status, expected 3"; show output "$dir/out"; return 1; }
    local parent child
    parent=$(sed -n 's/^parent //p' "$dir/out")
    child=$(sed -n 's/^child //p' "$dir/out")
    local reports
    reports=$(cd "$dir" && ls -- *.report 2>/dev/null | sort | tr '\n' ' ')
    [ "$reports" = "$(printf '%s\n' "$parent.report" "$child.report" | sort | tr '\n' ' ')" ] ||
        { echo "    reports: ${reports:-none}; expected the parent's ($parent) and the child's ($child) only"; return 1; }
    live_check "parent, _exit" "$dir/$parent.report" leak_parent 3000 3 || return 1
    live_check "forked child, _Exit" "$dir/$child.report" leak_child 700 7 || return 1
    # Python's os._exit, as multiprocessing's workers end.
    rm -f "$dir"/*.report
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/%p.report" /usr/bin/python3 -c 'import os; os._exit(0)' || return 1
    [ "$(ls "$dir"/*.report 2>/dev/null | wc -l)" -eq 1 ] || { echo "    python3 os._exit(0): no profile"; return 1; }
    echo "    python3 os._exit(0): profile written"
}
check "profile/a process ending with _exit still writes its profile" underscore_exit_case

# A second thread's exit() while the first is still exiting waits for it: glibc
# 2.36 would end the process before the library's destructor wrote anything
# (Tests/profile/exit_race.c). The statistics at exit likewise.
exit_race_case() {
    local prog="$work/exit_race" dir="$work/exit_race.d" status=0
    build_profile_prog exit_race -pthread || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/exit.report" "$prog" >"$dir/out" 2>&1 || status=$?
    [ "$status" -eq 7 ] || { echo "    exit status $status, expected 7 (the first exit's)"; show output "$dir/out"; return 1; }
    [ -f "$dir/exit.report" ] || { echo "    no profile written"; return 1; }
    live_check "second exit() during the first" "$dir/exit.report" leak_before_exit 10000 5 || return 1
    status=0
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_STATS=1 "$prog" >"$dir/stats.out" 2>&1 || status=$?
    [ "$status" -eq 7 ] && grep -q "^total: held" "$dir/stats.out" ||
        { echo "    statistics: exit status $status, expected 7 and the statistics"; show output "$dir/stats.out"; return 1; }
    echo "    statistics written, exit status 7"
}
check "profile/exit() from a second thread while the first exits keeps the profile" exit_race_case

# A program that ran into its address-space limit and freed its blocks: the
# report's scratch mapping is made after the heap gives its free pages back
# (Tests/profile/address_limit.c).
address_limit_case() {
    local prog="$work/address_limit" dir="$work/address_limit.d" status=0
    build_profile_prog address_limit || return 1
    ( ulimit -v 200000 && timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/r.report" "$prog" ) >"$dir/out" 2>&1 || status=$?
    [ "$status" -eq 0 ] || { echo "    exit status $status"; show output "$dir/out"; return 1; }
    [ -f "$dir/r.report" ] || { echo "    no profile written"; show output "$dir/out"; return 1; }
    live_check "after the limit" "$dir/r.report" keep_three 3000 3
}
check "profile/a program that ran into its address-space limit still gets its profile" address_limit_case

# A program that a signal with its default action ends (Ctrl-C, kill, a closed
# pipe) runs no exit handlers: the library writes the profile and statistics from
# a handler of its own and ends the process by the same signal. The 100 blocks
# the program holds must be in that profile (reason "signal") while another
# thread allocates; a program's own handler must stay the one that runs; and a
# signal the program inherited as ignored must stay ignored.
signal_run() { # NAME SIGNAL [own] -> $dir/NAME.{report,out,err,status}
    local name=$1
    shift
    local prog="$work/signal_end" dir="$work/signal_end.d"
    build_profile_prog signal_end -pthread || return 1
    # In a subshell whose own stderr is dropped: the shell's "Terminated" notice.
    ( status=0
      timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_STATS=1 \
          SWIFTMALLOC_REPORT="$dir/$name.report" "$prog" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || status=$?
      echo "$status" >"$dir/$name.status" ) 2>/dev/null
}
signal_case() {
    local dir="$work/signal_end.d" s n
    for s in INT TERM HUP PIPE; do
        signal_run "$s" "$s" || return 1
        n=$(kill -l "$s")
        [ "$(cat "$dir/$s.status")" -eq $((128 + n)) ] ||
            { echo "    SIG$s: exit status $(cat "$dir/$s.status"), expected $((128 + n))"; show stderr "$dir/$s.err"; return 1; }
        grep -q "^reason signal" "$dir/$s.report" 2>/dev/null || { echo "    SIG$s: no profile written by the signal"; show stderr "$dir/$s.err"; return 1; }
        grep -q "statistics for pid" "$dir/$s.err" || { echo "    SIG$s: no statistics"; show stderr "$dir/$s.err"; return 1; }
        "$cli" report "$dir/$s.report" --format json >"$dir/$s.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
        python3 "$checks" live "$dir/$s.json" hold_blocks 4800 100 >"$dir/$s.check" || { cat "$dir/$s.check"; return 1; }
    done
    echo "    SIGINT, SIGTERM, SIGHUP, SIGPIPE: each ended the program by itself after the profile (100 held blocks, exact) and statistics were written"
    signal_run own TERM own || return 1
    [ "$(cat "$dir/own.status")" -eq 3 ] && grep -q "^reason exit" "$dir/own.report" ||
        { echo "    the program's own SIGTERM handler did not run, or its exit wrote no profile"; show stderr "$dir/own.err"; return 1; }
    echo -n "    a handler of the program's own ran, and the profile was written at its exit;"
    local status=0
    # The shell sets the ignored action right before exec, below timeout (which handles TERM itself).
    timeout "$timeout_s" sh -c 'trap "" TERM; exec env LD_PRELOAD="$1" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_REPORT="$2" "$3" TERM' \
        sh "$lib" "$dir/ignored.report" "$work/signal_end" >"$dir/ignored.out" 2>&1 || status=$?
    [ "$status" -eq 1 ] && grep -q "still running after the signal" "$dir/ignored.out" ||
        { echo "    an inherited ignored SIGTERM ended the program (status $status)"; show output "$dir/ignored.out"; return 1; }
    echo " an ignored SIGTERM stayed ignored;"
    # CPython installs its SIGINT handler (KeyboardInterrupt) only where it finds the
    # default action: the library's report handler must not be what it finds.
    status=0
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT=/dev/null \
        /usr/bin/python3 -c 'import _thread
try:
    _thread.interrupt_main()
except KeyboardInterrupt:
    print("KeyboardInterrupt")' >"$dir/python.out" 2>&1 || status=$?
    [ "$status" -eq 0 ] && grep -qx KeyboardInterrupt "$dir/python.out" ||
        { echo "    python3: no KeyboardInterrupt (status $status)"; show output "$dir/python.out"; return 1; }
    echo "    python3 under profiling installed its SIGINT handler (KeyboardInterrupt raised)"
}
check "profile/a process ended by a signal still writes its profile and statistics" signal_case

# SWIFTMALLOC_REPORT_INTERVAL=1: while the program runs, its profile appears at the
# report path (reason "interval", written whole: the program copies the first one
# it finds complete) with the 100 blocks it holds; at exit the final report
# replaces it, with the 50 still held. Also in a forked child, which starts its
# own reporter thread.
interval_case() {
    local prog="$work/interval" dir="$work/interval.d"
    build_profile_prog interval || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT_INTERVAL=1 \
        SWIFTMALLOC_REPORT="$dir/run.%p.report" "$prog" "$dir/run.%p.report" "$dir/copy.report" >"$dir/out" 2>&1 ||
        { show interval "$dir/out"; return 1; }
    local final
    final=$(ls "$dir"/run.*.report 2>/dev/null | head -n 1)
    [ -n "$final" ] && [ "$(ls "$dir"/run.* | wc -l)" -eq 1 ] || { echo "    expected one report and no temporary file:"; ls "$dir"; return 1; }
    grep -q "^reason interval" "$dir/copy.report" && grep -q "^reason exit" "$final" ||
        { echo "    reasons: $(grep -h '^reason' "$dir/copy.report" "$final" | tr '\n' ' ')"; return 1; }
    live_check "while running" "$dir/copy.report" hold_blocks 4800 100 || return 1
    live_check "at exit" "$final" hold_blocks 2400 50 || return 1
    # A forked child: its own interval report, under its own pid.
    rm -f "$dir"/run.* "$dir/copy.report"
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT_INTERVAL=1 \
        SWIFTMALLOC_REPORT="$dir/run.%p.report" "$prog" "$dir/run.%p.report" "$dir/copy.report" fork >"$dir/out" 2>&1 ||
        { show "interval (fork)" "$dir/out"; return 1; }
    grep -q "^reason interval" "$dir/copy.report" || { echo "    no interval report from the forked child"; return 1; }
    live_check "forked child, while running" "$dir/copy.report" hold_blocks 4800 100 || return 1
    # The same through `swiftmalloc run --interval 1` (the program fails without an interval report).
    rm -f "$dir"/run.* "$dir/copy.report"
    SWIFTMALLOC_LIB="$lib" timeout "$timeout_s" "$cli" run --interval 1 --quiet --report "$dir/run.%p.report" -- \
        "$prog" "$dir/run.%p.report" "$dir/copy.report" >"$dir/out" 2>&1 || { show "swiftmalloc run --interval" "$dir/out"; return 1; }
    grep -q "^reason interval" "$dir/copy.report" || { echo "    no interval report through swiftmalloc run --interval"; return 1; }
    echo "    swiftmalloc run --interval 1: an interval report while the command ran"
}
check "profile/interval reports while the program runs, replaced by the final one" interval_case

# The reporter thread is paused, as the purger is, around unshare and setns
# (Tests/c/namespaces.c: both must succeed with the two helpers running).
namespaces_case() {
    local prog="$work/namespaces" dir="$work/namespaces.d"
    mkdir -p "$dir"
    "$CC" -O2 -g -pthread -I "$root/include" "$root/Tests/c/namespaces.c" -o "$prog" -ldl >"$dir/cc.log" 2>&1 ||
        { show compiler "$dir/cc.log"; return 1; }
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT_INTERVAL=1 \
        SWIFTMALLOC_REPORT="$dir/run.%p.report" NAMESPACES_HELPERS=2 "$prog" >"$dir/out" 2>&1 ||
        { show namespaces "$dir/out"; return 1; }
    sed 's/^/    /' "$dir/out"
}
check "profile/unshare and setns with the purger and the interval reporter running" namespaces_case

collapsed_real_case() {
    [ -s "$work/exact.report" ] || { echo "    no profile from profile/exact to render"; return 1; }
    "$cli" report "$work/exact.report" --format collapsed >"$work/exact.folded" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    python3 "$checks" collapsed "$work/exact.folded" || { show "folded stacks" "$work/exact.folded"; return 1; }
}
check "profile/collapsed stacks (3)" collapsed_real_case

svg_real_case() {
    [ -s "$work/exact.report" ] || { echo "    no profile from profile/exact to render"; return 1; }
    "$cli" report "$work/exact.report" --format svg --output "$work/exact.svg" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    svg_ok "$work/exact.svg"
}
check "profile/svg renders (4)" svg_real_case

diff_real_case() {
    profile_run scale1 LEAKY_SCALE=1 -- || return 1
    local a=$profile
    profile_run scale2 LEAKY_SCALE=2 -- || return 1
    local b=$profile
    "$cli" diff "$a" "$b" --format json >"$work/leaky-diff.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    "$cli" diff "$a" "$b" >"$work/leaky-diff.txt" 2>>"$work/err" || { show stderr "$work/err"; return 1; }
    python3 "$checks" diff "$work/leaky-diff.json" || { show "diff" "$work/leaky-diff.txt"; return 1; }
}
check "profile/diff of LEAKY_SCALE=1 and 2 (5)" diff_real_case

# The cached stack walker (learned frame rules) against libunwind: with
# SWIFTMALLOC_PROFILE_WALK=check every stack the cached walker returns is walked
# again with libunwind and compared. The program has frames without frame pointers,
# alloca frames, recursion past the depth limit, and three threads.
# walk_run MODE NAME WHAT: runs it with the profiler setting MODE (VAR=VALUE).
walk_run() {
    local mode=$1 name=$2 what=$3 prog="$work/walk"
    [ -x "$prog" ] || "$CC" -O2 -g -fomit-frame-pointer -pthread "$root/Tests/profile/walk.c" -o "$prog" >"$work/walk-cc.log" 2>&1 ||
        { show compiler "$work/walk-cc.log"; return 1; }
    timeout "$timeout_s" env LD_PRELOAD="$lib" "$mode" SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_PROFILE_WALK=check SWIFTMALLOC_REPORT="$work/$name.report" "$prog" >"$work/$name.out" 2>&1 ||
        { show walk "$work/$name.out"; return 1; }
    # Each thread learns its stack's rules in its first few captures; the rest are cached.
    local ok=0
    walk_check_ok "$work/$name.out" || ok=1
    [ -n "$WALK_COMPARED" ] && [ -n "$WALK_DIFFERED" ] || { show walk "$work/$name.out"; return 1; }
    echo "    $WALK_COMPARED of 9,000 $what came from learned rules; $WALK_DIFFERED differed from libunwind's"
    return $ok
}
walk_case() { walk_run SWIFTMALLOC_PROFILE=1 walk stacks; }
check "profile/cached stack walks equal libunwind's (6)" walk_case

# Sampled mode: the sampled malloc leaves its fast path by a jump to a C function
# that captures the program's stack with the cached walker when the allocation is
# a sample. Sampling every byte makes every malloc a sample, so each is checked.
walk_sampled_case() { walk_run SWIFTMALLOC_PROFILE_SAMPLE=1 walk-sampled "sampled stacks"; }
check "profile/sampled captures take the cached walk, equal to libunwind's" walk_sampled_case

# Runs $work/NAME (built) with full profiling and SWIFTMALLOC_PROFILE_WALK=WALK;
# its profile as JSON goes to $work/NAME.d/WALK.json.
walk_mode_json() { # NAME WALK
    local prog="$work/$1" dir="$work/$1.d" walk=$2
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_PROFILE_WALK="$walk" SWIFTMALLOC_REPORT="$dir/$walk.report" "$prog" >"$dir/$walk.out" 2>&1 ||
        { show output "$dir/$walk.out"; return 1; }
    "$cli" report "$dir/$walk.report" --format json >"$dir/$walk.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
}
# Runs $work/NAME in check mode (whose counts are printed at exit, so not QUIET)
# and expects at least MIN cached walks compared with libunwind's, none differing.
walk_counts_check() { # NAME MIN
    local prog="$work/$1" dir="$work/$1.d"
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_WALK=check \
        SWIFTMALLOC_REPORT="$dir/counts.report" "$prog" >"$dir/counts.out" 2>&1 || { show output "$dir/counts.out"; return 1; }
    walk_check_ok "$dir/counts.out"
    echo "    check: ${WALK_COMPARED:-no} cached walks compared with libunwind, ${WALK_DIFFERED:-?} differed"
    [ "${WALK_COMPARED:-0}" -ge "$2" ] && [ "${WALK_DIFFERED:-1}" -eq 0 ]
}

# Code without unwind tables that keeps data in rbp: libunwind guesses the next
# frame from rbp and reads a return address of 0, where its backtrace ends. The
# learned rules end there too: every allocation at the one-frame stack libunwind
# gives, in each walk mode (Tests/profile/zero_return.c).
zero_return_case() {
    local dir="$work/zero_return.d" walk
    build_profile_prog zero_return -pthread || return 1
    for walk in cached check libunwind; do
        walk_mode_json zero_return "$walk" || return 1
        echo -n "    $walk:"
        python3 "$checks" one-stack "$dir/$walk.json" alloc_without_cfi 40 1 || return 1
    done
    walk_counts_check zero_return 30
}
check "profile/code without unwind tables: stacks end where libunwind's backtrace ends" zero_return_case

# A program that unloads a plugin and loads another where it was, whose code has
# the same return address over a frame of another size: after the dlclose (which
# the library passes on and notes) neither the learned frame rules nor
# libunwind's caches may describe the new code. Every allocation through either
# plugin must have its whole stack: 6,006 under main -> call_plugin, none cut short,
# named although both plugins are unloaded at exit (the report's `unloaded`
# records), and the six blocks leaked through them must be in the leak report.
dlclose_run() { # MODE (cached, libunwind, check)
    local mode=$1 dir="$work/dlclose.d"
    mkdir -p "$dir"
    if [ ! -x "$dir/dlclose" ]; then
        { "$CC" -O2 -g -fomit-frame-pointer -shared -fPIC -DFRAME=8 "$root/Tests/profile/dlclose_plugin.c" -o "$dir/plugin-a.so" &&
          "$CC" -O2 -g -fomit-frame-pointer -shared -fPIC -DFRAME=88 "$root/Tests/profile/dlclose_plugin.c" -o "$dir/plugin-b.so" &&
          "$CC" -O2 -g "$root/Tests/profile/dlclose.c" -o "$dir/dlclose" -ldl; } >"$work/dlclose-cc.log" 2>&1 ||
            { show compiler "$work/dlclose-cc.log"; return 1; }
    fi
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_PROFILE_WALK="$mode" \
        SWIFTMALLOC_REPORT="$dir/$mode.report" "$dir/dlclose" "$dir/plugin-a.so" "$dir/plugin-b.so" >"$dir/$mode.out" 2>&1 ||
        { show dlclose "$dir/$mode.out"; return 1; }
    "$cli" report "$dir/$mode.report" --format collapsed --metric alloc-count >"$dir/$mode.folded" 2>"$work/err" ||
        { show stderr "$work/err"; return 1; }
    "$cli" report "$dir/$mode.report" --format collapsed --metric live-bytes >"$dir/$mode.live" 2>"$work/err" ||
        { show stderr "$work/err"; return 1; }
    local through cut leaked
    through=$(grep ';main;call_plugin;plugin_alloc;inner_alloc ' "$dir/$mode.folded" | awk '{s += $NF} END {print s + 0}')
    cut=$(grep -v '^\[no stack\] ' "$dir/$mode.folded" | grep -c -v '^_start;')
    leaked=$(grep ';main;call_plugin;plugin_alloc;inner_alloc ' "$dir/$mode.live" | awk '{s += $NF} END {print s + 0}')
    echo "    $mode: $through allocations through the plugins named in whole stacks, $cut stacks cut short, $leaked B leaked through them ($(grep -o 'B loaded.*' "$dir/$mode.out"))"
    [ "$through" -eq 6006 ] && [ "$cut" -eq 0 ] && [ "$leaked" -eq 384 ] || { show "folded stacks" "$dir/$mode.folded"; return 1; }
    if [ "$mode" = check ]; then
        walk_check_ok "$dir/$mode.out" >/dev/null
        [ "${WALK_DIFFERED:-1}" -eq 0 ] || { show walk "$dir/$mode.out"; return 1; }
    fi
}
dlclose_case() { dlclose_run cached && dlclose_run libunwind && dlclose_run check; }
check "profile/stacks stay whole and named when a plugin is unloaded and another loaded in its place" dlclose_case

# A library unloaded again after another was unloaded from the same place: its
# `unloaded` record moves to the end, so a reader that takes the most recent
# record for an address names the library loaded last (A, B, A, B, A, B, then A:
# the records listed A before B, so frames were named after B).
dlclose_again_case() {
    local dir="$work/dlclose.d" last
    [ -x "$dir/dlclose" ] || dlclose_run cached >/dev/null || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/again.report" "$dir/dlclose" "$dir/plugin-a.so" "$dir/plugin-b.so" "$dir/plugin-a.so" \
        >"$dir/again.out" 2>&1 || { show dlclose "$dir/again.out"; return 1; }
    grep -q "B loaded where A was: yes" "$dir/again.out" || { echo "    (B was not loaded where A was: nothing to check)"; return 0; }
    last=$(grep '^unloaded ' "$dir/again.report" | grep -E 'plugin-[ab]\.so$' | tail -n 1)
    echo "    last unloaded record: ${last##*/}"
    case "$last" in *plugin-a.so) ;; *) grep '^unloaded ' "$dir/again.report"; return 1 ;; esac
}
check "profile/a library unloaded again comes last among the unloaded records" dlclose_again_case

# An unloaded library whose file name holds newlines (and what would read as
# records after them) is one `unloaded` record per mapping, the newlines written
# \012; the reader takes them back and still names the frames in it.
dlclose_newline_case() {
    local dir="$work/dlclose.d" nl=$'\n'
    [ -x "$dir/dlclose" ] || dlclose_run cached >/dev/null || return 1
    local a="$dir/plugin-a${nl}site 987654 1 0x1234${nl}stat 987654 5 5000000 5 5 5000000 5000000 0 0${nl}.so"
    local b="$dir/plugin-b${nl}.so"
    cp "$dir/plugin-a.so" "$a" && cp "$dir/plugin-b.so" "$b" || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/newline.report" "$dir/dlclose" "$a" "$b" >"$dir/newline.out" 2>&1 ||
        { show dlclose "$dir/newline.out"; return 1; }
    local injected escaped through
    injected=$(grep -c -E '^(site|stat) 987654 ' "$dir/newline.report")
    escaped=$(grep -c '^unloaded .*plugin-a\\012site 987654' "$dir/newline.report")
    "$cli" report "$dir/newline.report" --format collapsed --metric alloc-count >"$dir/newline.folded" 2>"$work/err" ||
        { show stderr "$work/err"; return 1; }
    through=$(grep ';main;call_plugin;plugin_alloc;inner_alloc ' "$dir/newline.folded" | awk '{s += $NF} END {print s + 0}')
    echo "    $injected records injected by the file name, $escaped unloaded record(s) with the name escaped, $through allocations through the plugins named"
    [ "$injected" -eq 0 ] && [ "$escaped" -ge 1 ] && [ "$through" -eq 6006 ] ||
        { show report "$dir/newline.report"; return 1; }
}
check "profile/a library file name with newlines cannot forge report records" dlclose_newline_case

# The frame-pointer walk (SWIFTMALLOC_PROFILE_WALK=fp, the capture when libunwind
# is missing): leaky (built with frame pointers) has its leaks exact, named by
# their functions; and in threads of a program built without them, whose rbp holds
# the address of a {0, size} record when it calls malloc (Tests/profile/fp_walk.c),
# no size is taken for a return address: every stack names functions only, and the
# 200 threads' blocks are one site's.
fp_walk_case() {
    profile_run fpwalk SWIFTMALLOC_PROFILE_WALK=fp -- || return 1
    "$cli" report "$profile" --format json >"$work/fpwalk.json" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    python3 "$checks" leaks "$work/fpwalk.json" 1 || return 1
    local prog="$work/fp_walk" dir="$work/fp_walk.d" leaked stacks
    build_profile_prog fp_walk -fomit-frame-pointer -pthread || return 1
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_WALK=fp SWIFTMALLOC_PROFILE_QUIET=1 \
        SWIFTMALLOC_REPORT="$dir/exit.report" "$prog" 200 >"$dir/out" 2>&1 || { show fp_walk "$dir/out"; return 1; }
    if grep -q '^skipped' "$dir/out"; then echo "    threads: skipped (not x86-64)"; return 0; fi
    "$cli" report "$dir/exit.report" --format collapsed --metric live-bytes >"$dir/live" 2>"$work/err" ||
        { show stderr "$work/err"; return 1; }
    if grep -Eq '(^|;)0x[0-9a-f]+[; ]' "$dir/live"; then
        echo "    a stack holds an address that is no function's:"
        show "live stacks" "$dir/live"
        return 1
    fi
    leaked=$(grep -E '(^|;)leak_with_data_in_rbp [0-9]+$' "$dir/live" | awk '{s += $NF} END {print s + 0}')
    stacks=$(grep -c 'leak_with_data_in_rbp' "$dir/live")
    echo "    threads: $leaked B live from leak_with_data_in_rbp in $stacks stack(s)"
    [ "$leaked" -eq 12800 ] && [ "$stacks" -eq 1 ] || { show "live stacks" "$dir/live"; return 1; }
}
check "profile/frame-pointer walk: exact leaks, and no data taken for return addresses" fp_walk_case

# Code generated at run time lies in no loaded object: the frame-pointer walk
# keeps the program's call into the library wherever it lies, and the other walks
# find it too (Tests/profile/generated_code.c).
generated_code_case() {
    local dir="$work/generated_code.d" walk
    build_profile_prog generated_code -fno-omit-frame-pointer || return 1
    for walk in fp cached libunwind; do
        walk_mode_json generated_code "$walk" || return 1
        grep -q skipped "$dir/$walk.out" && { echo "    skipped (not x86-64)"; return 0; }
        echo -n "    $walk:"
        python3 "$checks" caller-live "$dir/$walk.json" call_generated 624 13 || return 1
    done
    # The cached walk learns the generated frame: its later captures are compared
    # with libunwind's (they were all walked by libunwind again).
    walk_counts_check generated_code 10
}
check "profile/stacks through code generated at run time" generated_code_case

# The frame-pointer walk through a library loaded a moment ago: a dlopen makes
# the next lookup that misses look for new objects (Tests/profile/fp_new_code.c).
fp_new_code_case() {
    local dir="$work/fp_new_code.d" through
    mkdir -p "$dir"
    { "$CC" -O2 -g -fno-omit-frame-pointer -shared -fPIC -DFRAME=8 "$root/Tests/profile/dlclose_plugin.c" -o "$dir/plugin-a.so" &&
      "$CC" -O2 -g -fno-omit-frame-pointer -shared -fPIC -DFRAME=88 "$root/Tests/profile/dlclose_plugin.c" -o "$dir/plugin-b.so" &&
      "$CC" -O2 -g -fno-omit-frame-pointer "$root/Tests/profile/fp_new_code.c" -o "$dir/fp_new_code" -ldl; } >"$dir/cc.log" 2>&1 ||
        { show compiler "$dir/cc.log"; return 1; }
    timeout "$timeout_s" env LD_PRELOAD="$lib" SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_PROFILE_WALK=fp \
        SWIFTMALLOC_REPORT="$dir/r.report" "$dir/fp_new_code" "$dir/plugin-a.so" "$dir/plugin-b.so" >"$dir/out" 2>&1 ||
        { show output "$dir/out"; return 1; }
    "$cli" report "$dir/r.report" --format collapsed --metric live-bytes >"$dir/r.folded" 2>"$work/err" || { show stderr "$work/err"; return 1; }
    through=$(grep ';plugin_alloc;inner_alloc ' "$dir/r.folded" | awk '{s += $NF} END {print s + 0}')
    echo "    $through B of 512 live through the plugins at their stacks"
    [ "$through" -eq 512 ] || { show "folded stacks" "$dir/r.folded"; return 1; }
}
check "profile/frame-pointer walk through a library loaded a moment ago" fp_new_code_case

# A fork while another thread is inside libunwind (which holds its own lock and the
# loader's dl_iterate_phdr lock, neither reset in a child): the child's first
# capture must not hang. The program stalls the other thread inside
# dl_iterate_phdr for 300 ms and forks then; it kills a child that takes 10 s.
fork_unwind_case() {
    local prog="$work/forkunwind" mode
    "$CC" -O1 -g -rdynamic -pthread "$root/Tests/profile/forkunwind.c" -o "$prog" -ldl >"$work/fu-cc.log" 2>&1 ||
        { show compiler "$work/fu-cc.log"; return 1; }
    for mode in SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_SAMPLE=1 "SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_PROFILE_WALK=libunwind"; do
        # shellcheck disable=SC2086
        timeout "$timeout_s" env LD_PRELOAD="$lib" $mode SWIFTMALLOC_PROFILE_QUIET=1 SWIFTMALLOC_REPORT=/dev/null \
            "$prog" >"$work/fu.out" 2>&1 || { echo "    $mode:"; show forkunwind "$work/fu.out"; return 1; }
    done
    echo "    full (cached walk), sampled and full (libunwind) captures: each child finished"
}
check "profile/fork while another thread is inside libunwind (3)" fork_unwind_case

# A set-user-ID program linked to the library (or one preloaded system-wide with
# /etc/ld.so.preload) runs with the environment of whoever starts it: the
# SWIFTMALLOC_ variables must not make it write a report or statistics with its
# privileges. Run by an unprivileged user, the same binary without its
# set-user-ID bit reads them (the control), with it reads none.
secure_execution_case() {
    local dir out status problems=()
    dir=$(mktemp -d "${TMPDIR:-/tmp}/swiftmalloc-secure.XXXXXX") || return 1
    chmod 755 "$dir" && mkdir -m 700 "$dir/private" && cp "$lib" "$dir/libswiftmalloc.so" && chmod 755 "$dir/libswiftmalloc.so" ||
        { rm -rf "$dir"; return 1; }
    printf '#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\nint main(void) { char *p = malloc(100); printf("euid %%d uid %%d\\n", (int)geteuid(), (int)getuid()); free(p); return p == NULL; }\n' >"$dir/suid.c"
    "$CC" -O1 "$dir/suid.c" -o "$dir/suid" -L"$dir" -lswiftmalloc -Wl,-rpath,"$dir" >"$dir/cc.log" 2>&1 ||
        { show compiler "$dir/cc.log"; rm -rf "$dir"; return 1; }
    cp "$dir/suid" "$dir/plain" && chmod 4755 "$dir/suid" && chmod 755 "$dir/plain"
    for prog in plain suid; do
        status=0
        (cd "$dir" && timeout "$timeout_s" setpriv --reuid=65534 --regid=65534 --clear-groups \
            env SWIFTMALLOC_STATS=1 SWIFTMALLOC_PROFILE=1 SWIFTMALLOC_REPORT="$dir/private/$prog.%p" "./$prog") \
            >"$dir/$prog.out" 2>&1 || status=$?
        out=$(cat "$dir/$prog.out")
        case $prog in
            plain) [ "$status" -eq 0 ] && grep -q '^total: held' "$dir/plain.out" ||
                       problems+=("unprivileged control: exit status $status, expected 0 and the statistics") ;;
            suid) grep -q '^euid 0 uid 65534' "$dir/suid.out" ||
                      problems+=("the set-user-ID binary did not run as root (a nosuid mount?): $out")
                  [ "$status" -eq 0 ] || problems+=("set-user-ID run: exit status $status")
                  ! grep -q 'swiftmalloc' "$dir/suid.out" || problems+=("the set-user-ID run printed the library's output") ;;
        esac
    done
    ! ls "$dir/private/suid."* >/dev/null 2>&1 || problems+=("the set-user-ID run wrote a profile into a directory only root may write")
    problems_or_pass "set-user-ID run" "$dir/suid.out"
    status=$?
    [ "$status" -ne 0 ] || echo "    control read the variables; the set-user-ID run wrote nothing"
    rm -rf "$dir"
    return "$status"
}
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    check "profile/a set-user-ID program ignores the SWIFTMALLOC_ variables" secure_execution_case
else
    skip "profile/a set-user-ID program ignores the SWIFTMALLOC_ variables (needs root and setpriv)"
fi

echo "Profiler tests took $(($(date +%s) - start))s"
summary
