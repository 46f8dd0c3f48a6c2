#!/usr/bin/env bash
# The benchmark suite on a GPU (a lent H100 / H200 with jax, flax, optax, chex, pandas, sklearn
# preinstalled). Run from the repository root; results go to $OUT (or bench/out).
#   bash bench/gpu.sh
set -euo pipefail
out="${OUT:-bench/out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import jax; print(jax.devices())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 bench/scaling.py --populations 1,16,256,1024,4096 --epochs 10 \
  --json "$out/scaling_gpu.json" --plot "$out/scaling_gpu.png"
# vmapped vs the same program member by member (sequential at P = 4096 takes a while: 4096 runs)
python3 bench/population_vs_sequential.py --population 4096 --epochs 10 --skip-optuna \
  --json "$out/pvs_gpu_4096.json"
python3 bench/population_vs_sequential.py --population 256 --epochs 10 --skip-optuna \
  --json "$out/pvs_gpu_256.json"
# bfloat16 matmuls with float32 master weights against float32, same members
python3 bench/precision.py --population 4096 --epochs 10 --json "$out/precision_gpu_4096.json"
# a user's CNN (vt.Linen) as a population against its members one by one
python3 bench/cnn_population.py --population 256 --epochs 5 --rounds 1 --json "$out/cnn_gpu_256.json"
# a grouped search's first call, later groups compiled in the background (on by default here) or not
python3 bench/compile_ahead.py --ahead 4 --only "2 epochs" --json "$out/compile_ahead_gpu.json"
# time to a result against the peers (issue 18): scikit-learn's RandomizedSearchCV (CPU) and
# Optuna TPE driving a per-trial jitted flax loop (same GPU), every compile paid
VMAPTUNE_COMPILE_CACHE=0 python3 bench/vs_sklearn.py --json "$out/vs_sklearn_gpu.json"
VMAPTUNE_COMPILE_CACHE=0 python3 bench/vs_optuna.py --json "$out/vs_optuna_gpu.json" --plot "$out/vs_optuna_gpu.png"
