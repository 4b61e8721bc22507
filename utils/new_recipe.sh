#!/usr/bin/env bash
# Start a recipe from the template (egs/toy + speechlib/tasks/toy), ESPnet's TEMPLATE way:
#     utils/new_recipe.sh NAME            # from the repository root
#     utils/new_recipe.sh --root DIR NAME # into another checkout (the tests use this)
# Creates a runnable skeleton that trains and scores the toy task under the new name:
#     egs/NAME/{run.sh, db.sh, conf/mini_NAME.yaml, conf/tiny_NAME.yaml, README.md}
#     egs/NAME/{path.sh, cmd.sh, utils} -> ../../utils/...   (shared, never copied)
#     speechlib/tasks/NAME/{__init__,prepare,train,score}.py
#     a row for tests/recipes/recipes.csv (the table-driven end-to-end test)
# Then replace the task: README.md, "Adding a recipe", walks through what to change.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
if [ "${1:-}" = "--root" ]; then root=$(cd "$2" && pwd); shift 2; fi
case "${1:-}" in
    -h|--help|"") sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit ;;
esac
name=$1
[[ "${name}" =~ ^[a-z][a-z0-9_]*$ ]] || { echo "$0: error: NAME '${name}' must be lower case: [a-z][a-z0-9_]*" >&2; exit 1; }
recipe=${root}/egs/${name}
package=${root}/speechlib/tasks/${name}
for path in "${recipe}" "${package}"; do
    [ ! -e "${path}" ] || { echo "$0: error: ${path} exists: choose another NAME" >&2; exit 1; }
done

template=${root}/egs/toy
rename() {  # the template's names -> the new recipe's
    sed -e "s/speechlib\.tasks\.toy/speechlib.tasks.${name}/g" -e "s/mini_toy/mini_${name}/g" \
        -e "s/tiny_toy/tiny_${name}/g" -e "s#egs/toy#egs/${name}#g" -e "s/\"toy\./\"${name}./g" \
        -e "s/^logger = logging.getLogger(\"toy\./logger = logging.getLogger(\"${name}./"
}
mkdir -p "${recipe}/conf" "${package}"
rename < "${template}/run.sh" > "${recipe}/run.sh"
chmod +x "${recipe}/run.sh"
cp "${template}/db.sh" "${recipe}/db.sh"
rename < "${template}/conf/mini_toy.yaml" > "${recipe}/conf/mini_${name}.yaml"
rename < "${template}/conf/tiny_toy.yaml" > "${recipe}/conf/tiny_${name}.yaml"
ln -s ../../utils/path.sh "${recipe}/path.sh"
ln -s ../../utils/cmd.sh "${recipe}/cmd.sh"
ln -s ../../utils "${recipe}/utils"
for module in __init__ prepare train score; do
    rename < "${root}/speechlib/tasks/toy/${module}.py" > "${package}/${module}.py"
done
cat > "${recipe}/README.md" <<EOF
# egs/${name}

Started from the template with \`utils/new_recipe.sh ${name}\`: it still trains the toy task.
Say here what the recipe reproduces (paper, tables), its stages, how to run it at paper scale
(db.sh, conf/paper_${name}.yaml), and the choices made where the paper is silent.
EOF
row="${name},conf/tiny_${name}.yaml,,,classifier/loss_curve.png results.json RESULTS.md,Noise-colour classification,all,no,600"
table=${root}/tests/recipes/recipes.csv
if [ -f "${table}" ]; then echo "${row}" >> "${table}"; fi
echo "created egs/${name} and speechlib/tasks/${name}; end-to-end test row added to tests/recipes/recipes.csv:"
echo "  ${row}"
echo "try it: cd egs/${name} && ./run.sh --config conf/tiny_${name}.yaml"
