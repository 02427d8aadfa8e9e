"""Sampling verification: is the sampling the user configured the sampling they got?

- :mod:`.otel`: OpenTelemetry head sampling, decided exactly from the trace ids the generator knows.
- :mod:`.xray_rules`, :mod:`.xray_model`, :mod:`.xray_check`: X-Ray reservoir + fixed rate, tested
  statistically (exact binomial bounds from :mod:`.stats`).
- :mod:`.config`: the configured expectation (run.json); :mod:`.chart`: report.html's section.
"""
