"""The command-line programs: flags -> Config -> library/runtime. Each is run as
`python -m jaxgan.<name>` through a shim of that name in the package root."""
