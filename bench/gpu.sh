#!/usr/bin/env bash
# The issue-18 checks on a lent GPU (an H100 / H200 whose image has jax with CUDA, flax, optax,
# chex, pandas, scikit-learn, orbax, matplotlib and tqdm, but not optuna), sized to one device
# command (10 minutes at most): each row has its own time limit and a row that fails or runs out
# does not stop the ones after it. Results go to $OUT (or bench/out).
#
# Optuna travels as wheels (the machine reaches no registry). Once, here, in the repository root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     --platform any -d .whl optuna alembic sqlalchemy greenlet colorlog mako
# then run it with `.whl` carried:   bash bench/gpu.sh
set -uo pipefail
out="${OUT:-bench/out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 VMAPTUNE_COMPILE_CACHE=0
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" || echo "== the carried wheels did not install: vs_optuna will fail"
fi
python3 -c "import jax; print(jax.__version__, jax.devices())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
nproc
row() {  # row SECONDS NAME COMMAND...: one check, stopped at its limit
  local limit=$1 name=$2
  shift 2
  echo "== $name (limit ${limit} s) $(date +%T)"
  timeout "$limit" "$@" || echo "== $name: exit $?"
}
# `bash bench/gpu.sh more`: the earlier issues' GPU figures and issue 18's diabetes row, for a second lease
if [ "${1:-}" = more ]; then
  row 150 pvs_256 python3 bench/population_vs_sequential.py --population 256 --epochs 10 --skip-optuna \
    --json "$out/pvs_gpu_256.json"
  row 150 precision python3 bench/precision.py --population 4096 --epochs 10 --json "$out/precision_gpu_4096.json"
  row 200 cnn python3 bench/cnn_population.py --population 256 --epochs 5 --rounds 1 --json "$out/cnn_gpu_256.json"
  # seed 004's workflow, regression variant on diabetes (issue 18, item 5)
  row 45 vs_sklearn_diabetes python3 bench/vs_sklearn.py --task regression --only "=vmaptune PopulationSearchCV" \
    --json "$out/vs_sklearn_diabetes_gpu.json"
else
  # 1. time to the same best validation score against Optuna TPE driving a per-trial jitted flax loop
  #    on the same GPU (the 5x goal), every compile paid
  row 180 vs_optuna python3 bench/vs_optuna.py --json "$out/vs_optuna_gpu.json" --plot "$out/vs_optuna_gpu.png"
  # 2. a grouped search's first call, its later groups compiled in the background
  #    (VMAPTUNE_COMPILE_AHEAD=4; off by default until this row says it pays) or one after another
  row 110 compile_ahead python3 bench/compile_ahead.py --ahead 4 --rounds 1 --only "2 epochs" \
    --json "$out/compile_ahead_gpu.json"
  # 3. seed 004's workflow: scikit-learn's RandomizedSearchCV on the host's cores against
  #    PopulationSearchCV on the GPU
  row 140 vs_sklearn python3 bench/vs_sklearn.py --only "=vmaptune PopulationSearchCV" --json "$out/vs_sklearn_gpu.json"
  # 4. one program's epoch seconds as the population grows
  row 80 scaling python3 bench/scaling.py --populations 1,16,256,1024,4096 --epochs 5 \
    --json "$out/scaling_gpu.json" --plot "$out/scaling_gpu.png"
fi
echo "== done $(date +%T)"
