#!/usr/bin/env bash
# Wait for a RayJob to end: exit 0 when it SUCCEEDED; when it FAILED or was STOPPED (or its deployment failed),
# print its status message and the submitter pod's last log lines and exit 1. Never waits on a dead job.
#
#   cluster/wait-rayjob.sh ehr-r1-train-rl [poll seconds, default 30]
set -euo pipefail
name=${1:?usage: cluster/wait-rayjob.sh <rayjob name> [poll seconds]}
poll=${2:-30}
kubectl=${KUBECTL:-kubectl}
misses=0
while true; do
  if ! $kubectl get "rayjob/$name" >/dev/null 2>&1; then  # a typo or a deleted job never ends: give up after 3 polls
    misses=$((misses + 1))
    if (( misses >= 3 )); then echo "rayjob/$name: not found (kubectl get failed $misses times)" >&2; exit 1; fi
    sleep "$poll"; continue
  fi
  misses=0
  job=$($kubectl get "rayjob/$name" -o jsonpath='{.status.jobStatus}' 2>/dev/null || true)
  deploy=$($kubectl get "rayjob/$name" -o jsonpath='{.status.jobDeploymentStatus}' 2>/dev/null || true)
  case "$job" in
    SUCCEEDED) echo "rayjob/$name: SUCCEEDED"; exit 0 ;;
    FAILED|STOPPED) ;;
    *) if [[ "$deploy" != "Failed" ]]; then sleep "$poll"; continue; fi ;;
  esac
  echo "rayjob/$name: job ${job:-not started}, deployment ${deploy:-unknown}: $($kubectl get "rayjob/$name" \
    -o jsonpath='{.status.message}' 2>/dev/null || true)" >&2
  echo "--- last log lines of job/$name (the submitter pod follows the driver):" >&2
  $kubectl logs --tail=40 "job/$name" >&2 || true
  exit 1
done
