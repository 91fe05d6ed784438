"""Entry point: ``python -m orchestrator`` (what dapr.yaml runs as app ``order-api``)."""

from common.contracts import ORDER_API
from common.runner import own_settings, run_service
from orchestrator.activities import register
from orchestrator.app import create_app
from orchestrator.settings import load_api_settings


def main() -> None:
    api = own_settings(ORDER_API, load_api_settings)
    run_service(
        ORDER_API,
        migrations="orchestrator:migrations",
        create_app=lambda settings: create_app(settings, api),
        register=register,
    )


if __name__ == "__main__":
    main()
