"""Entry point: ``python -m payment`` (what dapr.yaml runs)."""

from common.contracts import PAYMENT
from common.runner import run_service
from payment.activities import register
from payment.app import create_app

if __name__ == "__main__":
    run_service(PAYMENT, migrations="payment:migrations", create_app=create_app, register=register)
