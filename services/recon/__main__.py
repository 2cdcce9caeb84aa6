"""`python -m recon` is the `recon` console script."""

from recon.cli import main

main()
