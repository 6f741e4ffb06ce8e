"""`python -m jaxgan.plot`: a shim so the command reads like the others; the program is
jaxgan.cli.plot."""

from jaxgan.cli.plot import run

if __name__ == "__main__":
  run()
