# Command-line options for recipe scripts, in the style of Kaldi's utils/parse_options.sh.
#
# Source it after setting the defaults:   stage=0; nj=4; quick=false; . utils/parse_options.sh
# Each "--some-name VALUE" (or "--some-name=VALUE") sets the existing shell variable some_name;
# an unknown name is an error. A variable whose value is true or false may be given without a
# value ("--quick" sets quick=true). "--config FILE" sources FILE (more defaults) first;
# "--help" prints $help_message. Parsing stops at the first argument that is not an option;
# the remaining arguments are left in "$@".

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h) echo "${help_message:-$0: no help message}"; exit 0 ;;
    --*=*) _po_name=${1%%=*}; _po_value=${1#*=}; shift ;;
    --*)
      _po_name=$1; shift
      _po_var=${_po_name#--}; _po_var=${_po_var//-/_}
      if { [ "${!_po_var:-}" = true ] || [ "${!_po_var:-}" = false ]; } &&
         { [ $# -eq 0 ] || { [ "$1" != true ] && [ "$1" != false ]; }; }; then
        _po_value=true
      elif [ $# -gt 0 ]; then
        _po_value=$1; shift
      else
        echo "$0: option $_po_name needs a value" >&2; exit 1
      fi ;;
    *) break ;;
  esac
  _po_var=${_po_name#--}; _po_var=${_po_var//-/_}
  if [ "$_po_var" = config ]; then
    [ -f "$_po_value" ] || { echo "$0: no such config file: $_po_value" >&2; exit 1; }
    . "$_po_value"
    continue
  fi
  if ! [[ $_po_var =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!_po_var+x}" ]; then
    echo "$0: unknown option $_po_name" >&2; exit 1
  fi
  printf -v "$_po_var" '%s' "$_po_value"
done
unset _po_name _po_value _po_var
