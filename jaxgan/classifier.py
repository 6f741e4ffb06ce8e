"""`python -m jaxgan.classifier`: a shim kept so the command stays; the program is
jaxgan.cli.classifier."""

from jaxgan.cli.classifier import run

if __name__ == "__main__":
  run()
