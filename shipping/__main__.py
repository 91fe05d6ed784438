"""Entry point: ``python -m shipping`` (what dapr.yaml runs)."""

from common.contracts import SHIPPING
from common.runner import run_service
from shipping.activities import register
from shipping.app import create_app

if __name__ == "__main__":
    run_service(SHIPPING, migrations="shipping:migrations", create_app=create_app, register=register)
