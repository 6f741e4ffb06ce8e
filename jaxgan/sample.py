"""`python -m jaxgan.sample`: a shim; the program is jaxgan.cli.sample."""

from jaxgan.cli.sample import run

if __name__ == "__main__":
  run()
