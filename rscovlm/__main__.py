"""``python -m rscovlm`` runs the command line."""

from rscovlm.cli import main

if __name__ == "__main__":
    main()
