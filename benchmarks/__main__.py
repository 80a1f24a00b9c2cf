"""`python -m benchmarks [--quick] [--only NAME ...]`: run every benchmark and assemble the report."""

from benchmarks.run import main

main()
