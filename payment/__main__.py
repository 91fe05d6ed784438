"""Entry point: ``python -m payment`` (what dapr.yaml runs)."""

import logging
import sys

from common.contracts import PAYMENT
from common.runner import run_service
from common.settings import SettingsError
from payment.activities import register
from payment.app import create_app
from payment.settings import load_risk_limits


def main() -> None:
    try:
        limits = load_risk_limits()
    except SettingsError as exc:
        logging.basicConfig()
        logging.getLogger(PAYMENT).error("invalid configuration: %s", exc)
        sys.exit(2)
    run_service(
        PAYMENT,
        migrations="payment:migrations",
        create_app=create_app,
        register=lambda runtime, settings: register(runtime, settings, limits),
    )


if __name__ == "__main__":
    main()
