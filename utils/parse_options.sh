#!/usr/bin/env bash
# Parse `--name value` / `--name=value` options for a recipe script; source it after declaring
# the variables and `help_message`:
#     stage=1; nj=4; help_message="usage: ..."; . utils/parse_options.sh
# Semantics follow ESPnet/Kaldi: `--foo-bar v` sets the already declared `foo_bar`; an option
# naming an undeclared variable is an error; `--help`/`-h` prints $help_message and exits 0.
# `--config FILE`: a script that declares `config` (our recipes: the hyperpyyaml config) gets
# it as a plain option; otherwise FILE is a shell file sourced before the other options (Kaldi). Parsing stops at the first
# argument that is not an option (or after `--`); the rest stays in "$@".

__po_die() { echo "$0: error: $*" >&2; exit 1; }

# A --config file is applied before every other option, wherever it appears.
__po_args=("$@")
[ -n "${config+set}" ] && __po_args=()
for ((__po_i = 0; __po_i < ${#__po_args[@]}; __po_i++)); do
    case "${__po_args[__po_i]}" in
        --config=*) __po_config="${__po_args[__po_i]#--config=}" ;;
        --config) __po_config="${__po_args[__po_i + 1]:-}" ;;
        --) break ;;
        *) ;;
    esac
    if [ -n "${__po_config:-}" ]; then
        [ -f "${__po_config}" ] || __po_die "--config: no such file: ${__po_config}"
        # shellcheck disable=SC1090
        . "${__po_config}" || __po_die "--config: cannot source ${__po_config}"
        unset __po_config
    fi
done

while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            printf '%s\n' "${help_message:-usage: $0 [options]}"
            exit 0 ;;
        --) shift; break ;;
        --*=*) __po_name="${1%%=*}"; __po_value="${1#*=}"; shift ;;
        --*)
            __po_name="$1"
            [ $# -ge 2 ] || __po_die "option $1 needs a value"
            __po_value="$2"; shift 2 ;;
        *) break ;;
    esac
    __po_var="${__po_name#--}"
    __po_var="${__po_var//-/_}"
    [[ "${__po_var}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || __po_die "invalid option ${__po_name}"
    [ "${__po_var}" = config ] && [ -z "${config+set}" ] && continue
    # Only variables the script declared may be set: a typo must not pass silently.
    eval "[ -n \"\${${__po_var}+set}\" ]" || __po_die "invalid option ${__po_name} (see --help)"
    # A boolean stays a boolean.
    eval "__po_old=\"\${${__po_var}}\""
    if [[ "${__po_old}" == true || "${__po_old}" == false ]] && [[ "${__po_value}" != true && "${__po_value}" != false ]]; then
        __po_die "option ${__po_name} takes true or false, got '${__po_value}'"
    fi
    printf -v "${__po_var}" '%s' "${__po_value}"
done
unset __po_args __po_i __po_name __po_value __po_var __po_old
true
