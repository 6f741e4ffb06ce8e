"""The benchmark harness behind `python -m jaxgan.bench` (its flags: jaxgan.cli.bench).

  cases        the cases: Config overrides, steps per repeat, the single run a population
               is compared with, the PyTorch loops beside each case
  measure      one case timed in this process: steps/s, compile and start-up phases, peak
               RSS, FLOPs per step (XLA's cost analysis), the float32 matmul rate, the
               profile summary
  compare      every case in a fresh process and the PyTorch loops beside it, interleaved
               over rounds; medians and ratios (jaxgan/PyTorch, population/single run)
  torch_loops  the PyTorch reference loops: a standalone script run by an interpreter
               that imports torch (it imports no jaxgan)

It drives the training step through jaxgan.runtime, and only the bench program imports
it. Importing the package imports none of its modules.
"""
