"""The drill's own locustfile (ids, correlation headers, sent-ledger) with the think time taken out."""

from locust import constant

from loadtests import locustfile as drill


class SaturatingCruddurUser(drill.CruddurUser):
    wait_time = constant(0)
