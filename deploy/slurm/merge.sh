#!/usr/bin/env bash
# The shards of synth-array.sh combined into one dataset with its splits, then Parquet.
#SBATCH --job-name=ibert-merge
#SBATCH --cpus-per-task=2
#SBATCH --mem=32G
#SBATCH --time=4:00:00
set -euo pipefail
: "${IBERT_DATA:?set IBERT_DATA to a shared folder}"
"${IBERT:-ibert}" data merge "$IBERT_DATA/synth" -o "$IBERT_DATA/merged"
exec "${IBERT:-ibert}" data export --data "$IBERT_DATA/merged" --format parquet -o "$IBERT_DATA/merged/parquet"
