#!/usr/bin/env bash
# A million synthesized queries in 64 shards as a Slurm job array: task N makes shard N of 64
# (SLURM_ARRAY_TASK_ID, with --shards 64, which must match the array's 0-63). IBERT_DATA must be
# a folder every node sees. A task that fails or is pre-empted is resubmitted alone
# (`sbatch --array=N deploy/slurm/synth-array.sh`): it redoes only its unfinished chunks. The
# merge runs once every task has succeeded (after a resubmission, submit merge.sh again once
# it is done; `data merge` refuses while any chunk is missing):
#
#   jobid=$(sbatch --parsable deploy/slurm/synth-array.sh)
#   sbatch --dependency=afterok:$jobid deploy/slurm/merge.sh
#
#SBATCH --job-name=ibert-synth
#SBATCH --array=0-63%16
#SBATCH --cpus-per-task=2
#SBATCH --mem=6G
#SBATCH --time=12:00:00
set -euo pipefail
: "${IBERT_DATA:?set IBERT_DATA to a shared folder}"
exec "${IBERT:-ibert}" data synth --count 1000000 --shards 64 --seed 0 --jobs "${SLURM_CPUS_PER_TASK:-2}" -o "$IBERT_DATA/synth"
