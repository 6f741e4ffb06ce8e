"""The runtime that drives the library: the one training loop (loop), its schedule,
guards, workdir safety, checkpoints, writers and compilation options."""
