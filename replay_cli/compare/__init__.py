"""``replay-compare``: runs and sweeps side by side, from the results.json files on disk.

Data flow: :mod:`runs` (find and read runs) -> :mod:`swept` (which keys varied) -> :mod:`comparison`
(groups, mean/std/n over seeds) -> views: :mod:`tables` (terminal, CSV, JSON, markdown), :mod:`plots`
(PNG/PDF figures), :mod:`report` (self-contained HTML); :mod:`files` writes them, :mod:`cli` is the command.
"""
