"""order-api: the order saga, its REST API and its own orders database."""
