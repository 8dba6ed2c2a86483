"""`make bench`: a practice- and PCN-scale data set, the app under gunicorn, a load generator.

- `bench.environment`: the settings the bench runs with (its own database, production mode).
- `bench.dataset`: builds the scale data set with set-based SQL (COPY), reusing the domain's
  slot rules and token digests; skips the build when the data set already matches.
- `bench.plan`: per-run fixtures (links to book, the 20 contested slots) and the plan file the
  load generator reads.
- `bench.server`: gunicorn on 127.0.0.1, and its workers' peak memory.
- `bench.load`: the load generator, run as its own process (`python -m bench.load`); no Django.
- `bench.report`: docs/benchmarks.md's figures and the budgets.
- `bench.profile`: pyinstrument profiles of the same requests, in-process.
"""
