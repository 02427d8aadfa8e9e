"""The baseline plus the drill's three correlation headers (fixed values, built once): what sending
them costs Locust itself, apart from choosing the ids and writing the ledger."""

from locust import FastHttpUser, constant, task

from loadtests.ids import new_request_ids

HEADERS = new_request_ids().headers()


class PlainHeadersUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def noop(self) -> None:
        self.client.get("/api/health", headers=HEADERS)
