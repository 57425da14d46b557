"""pyrl's benchmarks, in three parts, each module run as ``python -m benchmarks.<part>.<name>``:

- ``ops``: the compiled ops beside their peers on the same inputs (returns, replay, her,
  recurrent, gpu); installed with pyrl as ``pyrl.benchmarks.ops``, which ``pyrl bench`` runs;
- ``systems``: whole-system rates (agents, sb3, distributed, memory_mapped);
- ``learning``: learning over seeds (agents, coop, recurrent), hours each.

``--quick`` gives short timings; ``--publish`` (a full run in a checkout) writes the table to
``docs/results/<name>.md``, which the docs pages include.
"""
