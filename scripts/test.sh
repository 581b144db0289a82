#!/usr/bin/env bash
# Set up (first run only) and run the test suite (slow and GPU tests are skipped where they cannot run).
source "$(dirname "$0")/bootstrap.sh"
python -m pytest -q -m "not slow" tests "$@"
