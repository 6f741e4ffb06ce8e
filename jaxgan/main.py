"""`python -m jaxgan.main`: a shim kept so the command stays; the program is
jaxgan.cli.main."""

from jaxgan.cli.main import run

if __name__ == "__main__":
  run()
