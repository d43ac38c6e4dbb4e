#!/bin/bash
# Every tool: --help and --version work (exit 0), a bad option exits 2, the man page exists,
# passes `groff -man -ww -z` without a warning, and documents every option --help lists.
set -u
BIN=$1
MAN=$2
fail=0
check_options() { # tool, help text, page
    local opts
    opts=$(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$2" | sort -u)
    for o in $opts; do
        [ "$o" = "--help" ] && continue
        # roff escapes the dashes (\-\-name): compare with them unescaped
        if ! sed 's/\\-/-/g' "$3" | grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)"; then
            echo "FAIL: $1: option $o is in --help but not in $(basename "$3")"
            fail=1
        fi
    done
}
for t in qkv model tokenize embed attend mlp block generate score attribute steer count-params \
    inspect train qkv-h5check; do
    page="$MAN/$t.1"
    help=$("$BIN/$t" --help) || { echo "FAIL: $t --help exited $?"; fail=1; }
    ver=$("$BIN/$t" --version) || { echo "FAIL: $t --version"; fail=1; }
    [[ "$ver" == "$t (qkv) "* || ( $t == qkv && "$ver" == "qkv "* ) ]] ||
        { echo "FAIL: $t --version printed '$ver'"; fail=1; }
    err=$("$BIN/$t" --no-such-option 2>&1 >/dev/null)
    [ $? -eq 2 ] || { echo "FAIL: $t with a bad option did not exit 2"; fail=1; }
    # an ENVIRONMENT section names every variable the tool reads
    if [[ $t != qkv-h5check ]]; then
        vars="XDG_CACHE_HOME QKV_HDF5_CHECK_SECONDS"
        grep -q -- "--device" <<<"$help" && vars="$vars QKV_DEVICE QKV_CUDA_MODULE"
        [ "$t" = inspect ] && vars="$vars NO_COLOR COLUMNS"
        env_section=$(sed -n '/^\.SH ENVIRONMENT/,/^\.SH [A-Z]/p' "$page")
        for v in $vars; do
            grep -q "$v" <<<"$env_section" || { echo "FAIL: $t.1: ENVIRONMENT lacks $v"; fail=1; }
        done
    fi
    # --help ends with examples and the manual's name
    if [[ $t != qkv && $t != qkv-h5check ]]; then
        [[ $(grep -v '^$' <<<"$help" | tail -n 1) == "Manual: man $t "* ]] && grep -q "^Examples:" <<<"$help" ||
            { echo "FAIL: $t --help does not end with examples and the manual"; fail=1; }
    fi
    # the unknown option is named first, before any missing required option
    [[ $t == qkv || $t == qkv-h5check || $err == "$t: unknown option '--no-such-option'"* ]] ||
        { echo "FAIL: $t --no-such-option said: $err"; fail=1; }
    [ -f "$page" ] || { echo "FAIL: no man page $page"; fail=1; continue; }
    warn=$(groff -man -ww -z "$page" 2>&1)
    [ -z "$warn" ] || { echo "FAIL: $page: $warn"; fail=1; }
    check_options "$t" "$help" "$page"
done
for sub in init import export info; do
    check_options "model $sub" "$("$BIN/model" $sub --help)" "$MAN/model.1"
done
# the umbrella runs each tool as the tool itself, and names a mistyped one
work=$(mktemp -d)
"$BIN/model" init --preset tiny -o "$work/m.h5" -q
[ "$("$BIN/qkv" tokenize -m "$work/m.h5" --ids "Hello world")" = \
  "$("$BIN/tokenize" -m "$work/m.h5" --ids "Hello world")" ] || { echo "FAIL: qkv tokenize"; fail=1; }
"$BIN/qkv" tokenize -m "$work/m.h5" "Hello" | "$BIN/qkv" embed -m "$work/m.h5" -o "$work/e.h5" ||
    { echo "FAIL: qkv through a pipe"; fail=1; }
err=$("$BIN/qkv" atend 2>&1 >/dev/null); code=$?
[ $code -eq 2 ] && [[ "$err" == *"did you mean 'attend'"* ]] ||
    { echo "FAIL: qkv atend: exit $code, '$err'"; fail=1; }
for t in tokenize embed attend mlp block generate score attribute steer inspect model count-params train; do
    "$BIN/qkv" --version | grep -q "tools:.* $t\b" || { echo "FAIL: qkv --version lacks $t"; fail=1; }
    "$BIN/qkv" help | grep -q "^  $t " || { echo "FAIL: qkv help lacks $t"; fail=1; }
    grep -q "^\.BR $t (1)" "$MAN/qkv.1" || { echo "FAIL: qkv.1 lacks $t"; fail=1; }
done
# GPT-2's built-in tokenizer by name, from any directory
[ "$(cd "$work" && "$BIN/tokenize" --vocab gpt2 --ids "Hello world")" = "15496 995" ] ||
    { echo "FAIL: tokenize --vocab gpt2"; fail=1; }
# One vocabulary of options: the same names in every tool, old spellings hidden but accepted,
# and the closest name suggested for a misspelt one (its current name for an old spelling).
expect_err() { # expected message start, command...
    local want=$1 got
    shift
    got=$("$@" 2>&1 >/dev/null)
    [ $? -eq 2 ] && [[ $got == "$want"* ]] || { echo "FAIL: $*: '$got', not '$want...'"; fail=1; }
}
expect_err "embed: unknown option '--modle'; did you mean '--model'?" "$BIN/embed" --modle m.h5
expect_err "embed: unknown option '--bogus' (see" "$BIN/embed" --bogus
expect_err "model: unknown option '--layrs'; did you mean '--n-layers'?" "$BIN/model" init --layrs 2
expect_err "attend: unexpected arguments 'b', 'c'" "$BIN/attend" -m m.h5 -l 0 a b c
for o in --n-layers --n-heads --n-ctx --d-model --d-mlp --kv-heads; do
    for t in "model init" count-params; do
        # shellcheck disable=SC2086
        "$BIN"/$t --help | grep -q -- "$o " || { echo "FAIL: $t --help lacks $o"; fail=1; }
    done
done
"$BIN/model" init --help | grep -qE -- "--(layers|heads|ctx) " && { echo "FAIL: old names in --help"; fail=1; }
"$BIN/model" init --layers 1 --heads 2 --d-model 8 --ctx 16 -q -o "$work/old.h5" &&
    "$BIN/model" init --n-layers 1 --n-heads 2 --d-model 8 --n-ctx 16 -q -o "$work/new.h5" &&
    cmp -s <("$BIN/count-params" -m "$work/old.h5" | cut -d: -f2-) \
        <("$BIN/count-params" -m "$work/new.h5" | cut -d: -f2-) ||
    { echo "FAIL: model init's old and new names differ"; fail=1; }
[ "$("$BIN/count-params" --vocab 100 --n-layers 1 --d-model 64 --json)" = \
  "$("$BIN/count-params" --vocab-size 100 --n-layers 1 --d-model 64 --json)" ] ||
    { echo "FAIL: count-params --vocab"; fail=1; }
# Progress on a terminal (script gives one) for a write that takes over a second, none for a
# short one, none with --quiet or off a terminal.
progress() { script -qec "$*" /dev/null | tr '\r' '\n' | grep -c "% of the weights written"; }
big="$BIN/model init --preset tiny --n-layers 5 --d-model 768 --n-heads 12 -o $work/big.h5"
[ "$(progress "$big")" -ge 2 ] || { echo "FAIL: no progress for a long model init"; fail=1; }
# The short write is a model of a few kilobytes of layers, so it ends well within the second
# also under a sanitizer on a loaded machine (the 30 MB default preset did not).
small="$BIN/model init --n-layers 1 --d-model 8 --n-heads 2 --n-ctx 16 -o $work/small.h5"
[ "$(progress "$big -q")" -eq 0 ] && [ "$(progress "$small")" -eq 0 ] ||
    { echo "FAIL: progress for a short or quiet model init"; fail=1; }
[ -z "$($big 2>&1 >/dev/null | grep "%")" ] || { echo "FAIL: progress off a terminal"; fail=1; }
# An output that is not a file (a named pipe here; /dev/null, /dev/stdout alike) is written to,
# never replaced by a renamed file.
mkfifo "$work/fifo"
cat "$work/fifo" >"$work/from-fifo.h5" &
"$BIN/model" init -q -o "$work/fifo"
wait
[ -p "$work/fifo" ] && "$BIN/inspect" "$work/from-fifo.h5" >/dev/null ||
    { echo "FAIL: model init -o FIFO"; fail=1; }
cat "$work/fifo" >"$work/from-fifo.png" &
"$BIN/tokenize" -m "$work/m.h5" "a b" | "$BIN/embed" -m "$work/m.h5" | "$BIN/attend" -m "$work/m.h5" -l 0 \
    --save pattern | "$BIN/inspect" - --pattern --png "$work/fifo" >/dev/null
wait
[ -p "$work/fifo" ] && [ "$(head -c 4 "$work/from-fifo.png" | tail -c 3)" = PNG ] ||
    { echo "FAIL: inspect --png FIFO"; fail=1; }
rm -rf "$work"
warn=$(groff -man -ww -z "$MAN/qkv-files.5" 2>&1)
[ -z "$warn" ] || { echo "FAIL: qkv-files.5: $warn"; fail=1; }
[ $fail -eq 0 ] && echo "all tools: help, version, exit codes and man pages ok"
exit $fail
