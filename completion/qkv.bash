# Bash completion for qkv's tools and the qkv command. Each tool answers `TOOL __complete
# WORDS...` from its own option declarations (tools/commands/completion.hpp): option names,
# subcommands, layer numbers of the --model file, a file's datasets after FILE:, or __files__
# where a file name goes.
_qkv_complete() {
    local line=${COMP_LINE:0:COMP_POINT} words cur
    # Split as the shell did, but keep FILE:/DATASET whole (':' breaks words for bash).
    read -r -a words <<<"$line"
    [[ $line == *[[:space:]] || ${#words[@]} -eq 0 ]] && words+=("")
    cur=${words[${#words[@]} - 1]}
    # qkv TOOL ...: qkv answers for the tool it runs.
    local out
    out=$("${words[0]}" __complete "${words[@]:1}" 2>/dev/null) || return
    if [[ $out == __files__ ]]; then
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return
    fi
    mapfile -t COMPREPLY < <(compgen -W "$out" -- "$cur")
    # bash completes the part after the last ':' of the word: offer that part.
    if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
        local prefix=${cur%"${cur##*:}"} i
        for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=${COMPREPLY[i]#"$prefix"}; done
    fi
}
complete -F _qkv_complete qkv tokenize embed attend mlp block generate score attribute steer \
    qkv-tokenize qkv-embed qkv-attend qkv-mlp qkv-block qkv-generate qkv-score qkv-attribute \
    qkv-steer qkv-inspect qkv-model qkv-count-params qkv-train \
    inspect model count-params train
