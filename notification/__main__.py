"""Entry point: ``python -m notification`` (what dapr.yaml runs)."""

from common.contracts import NOTIFICATION
from common.runner import run_service
from notification.activities import register
from notification.app import create_app

if __name__ == "__main__":
    run_service(NOTIFICATION, migrations="notification:migrations", create_app=create_app, register=register)
