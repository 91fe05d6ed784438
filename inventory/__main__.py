"""Entry point: ``python -m inventory`` (what dapr.yaml runs)."""

from common.contracts import INVENTORY
from common.runner import run_service
from inventory.activities import register
from inventory.app import create_app

if __name__ == "__main__":
    run_service(INVENTORY, migrations="inventory:migrations", create_app=create_app, register=register)
