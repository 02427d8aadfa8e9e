"""The baseline: a plain FastHttpUser, no think time, no ids, no headers, no ledger."""

from locust import FastHttpUser, constant, task


class PlainUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def noop(self) -> None:
        self.client.get("/api/health")
