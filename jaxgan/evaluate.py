"""`python -m jaxgan.evaluate`: a shim kept so the command stays; the program is
jaxgan.cli.evaluate."""

from jaxgan.cli.evaluate import run

if __name__ == "__main__":
  run()
