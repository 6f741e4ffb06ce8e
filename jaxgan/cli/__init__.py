"""The command-line programs: flags -> Config -> library/runtime (the bench's measuring
code: jaxgan.benchmark). Each is run as `python -m jaxgan.<name>` through a shim of that
name in the package root."""
