#!/usr/bin/env bash
# Set up (first run only) and run pdfsolve on its bundled example: simulate and plot the PDFs of
# three bundled clusters into ./pdfsolve-example/.
source "$(dirname "$0")/bootstrap.sh"
pdfsolve example --out pdfsolve-example "$@"
