"""Entry point: ``python -m payment`` (what dapr.yaml runs)."""

from common.contracts import PAYMENT
from common.runner import own_settings, run_service
from payment.activities import register
from payment.app import create_app
from payment.settings import load_risk_limits


def main() -> None:
    limits = own_settings(PAYMENT, load_risk_limits)
    run_service(
        PAYMENT,
        migrations="payment:migrations",
        create_app=create_app,
        register=lambda runtime, settings: register(runtime, settings, limits),
    )


if __name__ == "__main__":
    main()
