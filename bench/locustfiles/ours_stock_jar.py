"""The drill's locustfile with Locust's stock cookie jar put back: the ratio without the drill's
lazy jar (``loadtests.cookiejar.LazyCookieJar``), i.e. what ids, headers and the ledger cost alone."""

from http.cookiejar import CookieJar

from locust import constant
from locust.env import Environment

from loadtests import locustfile as drill


class StockJarCruddurUser(drill.CruddurUser):
    wait_time = constant(0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.client.cookiejar = self.client.client.cookiejar = CookieJar()
