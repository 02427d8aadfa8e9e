"""The free-tier budget ledger: what each run really cost against each backend's monthly allowance.

- ``allowances``: the monthly allowances (defaults with their sources), overrides from flags or TOML
- ``usage``: the exact counting rules, from what the verifiers found through the public APIs
- ``ledger``: the durable SQLite ledger, per backend account and calendar month (UTC)
- ``accounts``: which account a run draws on (``local`` for the embedded stack, never a secret)
- ``traffic``: what a load plan will send (the locustfile read as text, never imported)
- ``forecast``: the pre-flight forecast and guard, and how long an allowance lasts at the observed rate
- ``render``: the console table, the ``budget`` section of summary.json and the report's SVG chart
"""
