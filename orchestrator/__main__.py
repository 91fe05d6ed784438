"""Entry point: ``python -m orchestrator`` (what dapr.yaml runs as app ``order-api``)."""

import logging
import sys

from common.contracts import ORDER_API
from common.runner import run_service
from common.settings import SettingsError
from orchestrator.activities import register
from orchestrator.app import create_app
from orchestrator.settings import load_api_settings


def main() -> None:
    try:
        api = load_api_settings()
    except SettingsError as exc:
        logging.basicConfig()
        logging.getLogger(ORDER_API).error("invalid configuration: %s", exc)
        sys.exit(2)
    run_service(
        ORDER_API,
        migrations="orchestrator:migrations",
        create_app=lambda settings: create_app(settings, api),
        register=register,
    )


if __name__ == "__main__":
    main()
