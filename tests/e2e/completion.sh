#!/bin/bash
# Bash completion (completion/qkv.bash) as bash calls it: COMP_LINE and COMP_POINT set, the
# completion function run, COMPREPLY checked. Options come from each tool's declaration, layer
# numbers from the --model file, datasets after FILE:, subcommands of model, tools after qkv.
set -u
BIN=$1
SRC=$2
export PATH="$BIN:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
model init --preset tiny --seed 1 -o tiny.h5 -q || exit 1
tokenize -m tiny.h5 "a b" -o toks.h5 || exit 1
# shellcheck source=/dev/null
source "$SRC/completion/qkv.bash"
fail=0
offered() { # LINE: COMPREPLY, one a line, for the cursor at the line's end
    COMP_LINE=$1 COMP_POINT=${#1} COMPREPLY=()
    COMP_WORDBREAKS=${COMP_WORDBREAKS:-$' \t\n"\'><=;|&(:'}
    _qkv_complete
    printf '%s\n' "${COMPREPLY[@]}"
}
expect() { # LINE, then what must be offered (each a whole line), or ! WORD for what must not
    local line=$1 got
    shift
    got=$(offered "$line")
    for want in "$@"; do
        if [[ $want == "!"* ]]; then
            grep -qxF -- "${want:1}" <<<"$got" && { echo "FAIL: '$line' offered ${want:1}"; fail=1; }
        else
            grep -qxF -- "$want" <<<"$got" || { echo "FAIL: '$line' did not offer '$want' (got: $(tr '\n' ' ' <<<"$got"))"; fail=1; }
        fi
    done
}
expect "attend --la" --layer "!--model"
expect "attend --dev" --device
expect "attend -m tiny.h5 --layer " 0 1 "!2"
expect "block -m tiny.h5 --layers " 0 1 all
expect "attend --device " cpu cuda
expect "model " init import export info
expect "model init --pre" --preset
expect "qkv att" attend "!embed"
expect "qkv attend --sa" --save
expect "qkv help ins" inspect
expect "attribute --me" --method
# FILE:/DATASET: bash completes after the ':', so the part after it is offered
expect "inspect toks.h5:/tok" /tokens /token_text "!/resid"
# a file name goes here
expect "inspect t" toks.h5 tiny.h5 "!attend"
expect "embed -m ti" tiny.h5
[ $fail -eq 0 ] && echo "completion: every case offered what it should"
exit $fail
