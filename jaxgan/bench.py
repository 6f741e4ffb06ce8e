"""`python -m jaxgan.bench`: a shim kept so the command stays; the program is
jaxgan.cli.bench."""

from jaxgan.cli.bench import run

if __name__ == "__main__":
  run()
