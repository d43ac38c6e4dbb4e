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
    "$BIN/$t" --no-such-option >/dev/null 2>&1
    [ $? -eq 2 ] || { echo "FAIL: $t with a bad option did not exit 2"; fail=1; }
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
rm -rf "$work"
warn=$(groff -man -ww -z "$MAN/qkv-files.5" 2>&1)
[ -z "$warn" ] || { echo "FAIL: qkv-files.5: $warn"; fail=1; }
[ $fail -eq 0 ] && echo "all tools: help, version, exit codes and man pages ok"
exit $fail
