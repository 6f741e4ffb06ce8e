"""`python -m jaxgan.figure1`: a shim kept so the command stays; the program is
jaxgan.cli.figure1."""

from jaxgan.cli.figure1 import run

if __name__ == "__main__":
  run()
